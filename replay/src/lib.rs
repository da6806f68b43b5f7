//! weightlog-replay: projections and the five scoring mechanisms, weights -> u16, and the
//! parallel auditor. Empty until the mechanisms issue; it depends only on weightlog-schema
//! so that an auditor's code path stays free of I/O, network and GPU.
//!
//! **Architecture Invariant:** nothing in this crate reads a clock, an environment
//! variable, a file or a random source.
