//! natter's TLS, shared by natter-server, the `natter` CLI and natter-bridge: a server
//! certificate chain and key read from PEM files into a config that can be swapped while
//! connections are open ([`ServerTls`]), and client configs that always verify the server,
//! against the system's roots or a private CA ([`client_config`]). There is deliberately no way
//! to skip verification.
//!
//! rustls with the `ring` provider, passed explicitly (never the process-wide default), so the
//! binaries need no C toolchain and cannot end up with two providers.
#![warn(missing_docs)]

#[cfg(feature = "dev-ca")]
pub mod dev_ca;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

pub use rustls;
pub use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// The port a `natters://` address means when it names none.
pub const DEFAULT_TLS_PORT: u16 = 8443;

/// Why certificates or keys could not be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds no usable item.
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        /// "certificate chain", "private key" or "CA certificates".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificate and key (e.g. the key is not the certificate's).
    #[error("certificate {cert} with key {key}: {source}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// A CA file's certificate could not be added to the trust store.
    #[error("bad CA certificate in {path}: {source}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// A reloaded certificate is expired or not valid yet: every client that verifies would
    /// refuse it, so the one in use stays.
    #[error(
        "the certificate in {cert} {words}: every client that verifies would refuse it; the certificate in use stays"
    )]
    OutOfDate {
        /// The certificate file.
        cert: PathBuf,
        /// "expired 3 days ago" or "is not valid yet (for another 2 days)".
        words: String,
    },
    /// The system has no root certificates to verify against.
    #[error("no system root certificates found{0}")]
    NoSystemRoots(String),
    /// Not a name (or IP address) a certificate can be checked against.
    #[error("not a valid server name for TLS: {0:?}")]
    ServerName(String),
}

/// The crypto provider every config here uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's certificate and key, from PEM files, in a config swapped whole on
/// [`ServerTls::reload`]: a handshake takes the config current when it starts, and open
/// connections keep the one they were made with.
#[derive(Debug)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    config: ArcSwap<ServerConfig>,
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and the private key (PKCS#8, PKCS#1 or SEC1).
    /// A certificate out of its dates is served (there is none to keep instead), with a warning.
    pub fn load(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Result<ServerTls, TlsError> {
        let (cert, key) = (cert.into(), key.into());
        let (config, out_of_date) = server_config(&cert, &key)?;
        if let Some(words) = out_of_date {
            tracing::warn!(
                cert = %cert.display(),
                "the server's certificate {words}: every client that verifies refuses it"
            );
        }
        Ok(ServerTls {
            cert,
            key,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again. On an error the certificate in use stays; a certificate expired
    /// or not valid yet is an error.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (config, out_of_date) = server_config(&self.cert, &self.key)?;
        if let Some(words) = out_of_date {
            return Err(TlsError::OutOfDate {
                cert: self.cert.clone(),
                words,
            });
        }
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// The config new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// An acceptor with the config new handshakes use.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

fn pem_error(what: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        what,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file, in order; an error if there is none.
pub fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("private key", path, e))
}

/// A server config from PEM files: TLS 1.2 and 1.3, no client certificates, and the key checked
/// against the certificate; with what is wrong with the certificate's dates, if anything.
fn server_config(cert: &Path, key: &Path) -> Result<(ServerConfig, Option<String>), TlsError> {
    let chain = read_certs(cert, "certificate chain")?;
    let out_of_date = chain
        .first()
        .and_then(|c| out_of_date(c, rustls_pki_types::UnixTime::now()));
    if chain.first().is_some_and(is_ca_certificate) {
        // Served all the same (it is the operator's choice), but said: clients that verify,
        // natter's own and natter-bridge among them, refuse it with a word of X.509 at best.
        tracing::warn!(
            cert = %cert.display(),
            "the server's certificate {CA_AS_SERVERS}: natter, natter-bridge and other clients \
             that verify refuse it (CaUsedAsEndEntity), even with it as their CA file; \
             {CA_AS_SERVERS_FIX}"
        );
    }
    let private = read_key(key)?;
    let config_error = |source| TlsError::Config {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth();
    let certified =
        rustls::sign::CertifiedKey::from_der(chain, private, &provider()).map_err(config_error)?;
    let config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    Ok((config, out_of_date))
}

/// What is wrong with `cert`'s dates at `now`, in words ("expired 3 days ago"), if anything:
/// the first check a verifying client makes of a certificate, whoever issued it.
pub fn out_of_date(cert: &CertificateDer<'_>, now: rustls_pki_types::UnixTime) -> Option<String> {
    let leaf = webpki::EndEntityCert::try_from(cert).ok()?;
    // Any anchor will do: the dates are checked before the issuer is looked for.
    let anchors = [webpki::anchor_from_trusted_cert(cert).ok()?];
    let verified = leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    let days = |secs: u64| secs.div_ceil(86_400);
    match verified {
        Err(webpki::Error::CertExpired { time, not_after }) => Some(format!(
            "expired {} day(s) ago",
            days(time.as_secs().saturating_sub(not_after.as_secs()))
        )),
        Err(webpki::Error::CertNotValidYet { time, not_before }) => Some(format!(
            "is not valid yet (for another {} day(s))",
            days(not_before.as_secs().saturating_sub(time.as_secs()))
        )),
        Err(webpki::Error::InvalidCertValidity) => {
            Some("is never valid (its validity period ends before it starts)".to_owned())
        }
        _ => None,
    }
}

/// What is wrong with a CA certificate as a server's own, for the server's warning and the
/// client's refusal alike.
const CA_AS_SERVERS: &str = "is a CA certificate (basicConstraints CA:TRUE, which `openssl req \
     -x509` sets unless told otherwise)";
/// ... and what its operator does about it.
const CA_AS_SERVERS_FIX: &str =
    "make it with `-addext basicConstraints=critical,CA:FALSE`, or have a CA sign it";

/// Whether `cert` says it is a CA's (basicConstraints CA:TRUE), which a verifying client
/// refuses as a server's own certificate: the check rustls's verifier makes of a leaf, with
/// the certificate as its own trust anchor, so that only that refusal is asked about.
pub fn is_ca_certificate(cert: &CertificateDer<'_>) -> bool {
    let (Ok(anchor), Ok(leaf)) = (
        webpki::anchor_from_trusted_cert(cert),
        webpki::EndEntityCert::try_from(cert),
    ) else {
        return false;
    };
    let anchors = [anchor];
    let verified = leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        rustls_pki_types::UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    matches!(verified, Err(webpki::Error::CaUsedAsEndEntity))
}

/// Whom a client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's root certificates.
    SystemRoots,
    /// Only the CA certificates in this PEM file (a private CA).
    CaFile(PathBuf),
}

/// A client config that verifies the server's certificate against `trust`. There is no
/// option to skip the check.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match trust {
        Trust::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(TlsError::NoSystemRoots(why));
            }
        }
        Trust::CaFile(path) => {
            for cert in read_certs(path, "CA certificates")? {
                roots.add(cert).map_err(|source| TlsError::BadCa {
                    path: path.clone(),
                    source,
                })?;
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        // The ring provider supports the default versions.
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connector verifying against `trust`.
pub fn connector(trust: &Trust) -> Result<TlsConnector, TlsError> {
    Ok(TlsConnector::from(client_config(trust)?))
}

/// The name a server's certificate is checked against: a DNS name or an IP address (brackets
/// around an IPv6 address are taken off).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
}

/// The TLS error inside an I/O error from a handshake, if it is one (and not the network
/// failing): the peer does not speak TLS, or its certificate is not trusted. Trying again will
/// not help.
pub fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// Whether an I/O error from a TLS handshake means the peer's certificate was not trusted.
pub fn is_certificate_error(e: &std::io::Error) -> bool {
    tls_error(e).is_some_and(|r| {
        matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
    })
}

/// Why a client refused the server's certificate, in words for whoever runs the client: rustls's
/// own, except where they are X.509's (`Other(OtherError(CaUsedAsEndEntity))`: the server's
/// certificate is a CA's, which no verifying client takes, even as its CA file).
pub fn certificate_words(e: &rustls::Error) -> String {
    if let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = e
        && matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        )
    {
        return format!(
            "it {CA_AS_SERVERS}, and clients that verify never take one as a server's own, \
             even as their CA file; the server's operator should {CA_AS_SERVERS_FIX}"
        );
    }
    e.to_string()
}

/// [`certificate_words`] for a handshake's I/O error that is a TLS one, else its own words.
pub fn handshake_words(e: &std::io::Error) -> String {
    tls_error(e).map_or_else(|| e.to_string(), certificate_words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(server_name("localhost").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = client_config(&Trust::CaFile(missing.clone())).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = ServerTls::load(&empty, &empty).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }
}
