//! weightlog-replay: projections and mechanisms. Filled in by the mechanisms issue.
