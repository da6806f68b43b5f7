//! HTTP clients for everything weightlog fetches or asks: one TLS stack (rustls with the
//! ring provider, no C toolchain needed) that trusts the system's CA store, and honours
//! `SSL_CERT_FILE`, because some networks intercept TLS with their own CA.

use std::time::Duration;

/// Install ring as the process's rustls provider; a provider installed earlier (by the
/// embedding application) is left in place.
pub fn install_tls_provider() {
    // `Err` means a provider is already installed, which is the goal.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The extra roots named by `SSL_CERT_FILE`, when it is set and readable.
fn extra_roots() -> Result<Vec<reqwest::Certificate>, String> {
    let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|path| !path.is_empty()) else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(&path)
        .map_err(|error| format!("SSL_CERT_FILE={}: {error}", path.to_string_lossy()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| format!("SSL_CERT_FILE={}: {error}", path.to_string_lossy()))
}

/// A blocking client with the given connect and per-read timeouts.
pub fn blocking_client(
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<reqwest::blocking::Client, String> {
    install_tls_provider();
    let mut builder = reqwest::blocking::Client::builder()
        .user_agent(concat!("weightlog/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        // The blocking client's timeout bounds each wait for the server (the request, then
        // each body read), not the whole download, so a slow but live link still finishes.
        .timeout(read_timeout);
    for root in extra_roots()? {
        builder = builder.add_root_certificate(root);
    }
    builder.build().map_err(|error| error.to_string())
}
