//! TLS for the benchmark: a throwaway CA and a certificate for `localhost` (natter-tls's
//! `dev-ca`), written once per directory, for natter-server's TLS listener and the clients that
//! verify it.

use natter_tls::dev_ca::DevCa;
use std::path::{Path, PathBuf};

/// The files a TLS run needs.
#[derive(Debug, Clone)]
pub struct BenchCerts {
    /// The CA the clients trust.
    pub ca: PathBuf,
    /// The server's certificate (for `localhost` and 127.0.0.1).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// Makes a CA and a certificate in `dir` (anew each call: they are cheap and never reused
/// across benchmarks).
pub fn bench_certs(dir: &Path) -> std::io::Result<BenchCerts> {
    std::fs::create_dir_all(dir)?;
    let ca = DevCa::new("natter-bench CA").map_err(std::io::Error::other)?;
    let leaf = ca
        .leaf(&["localhost", "127.0.0.1"])
        .map_err(std::io::Error::other)?;
    let (cert, key) = leaf.write(dir)?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem())?;
    Ok(BenchCerts {
        ca: ca_file,
        cert,
        key,
    })
}
