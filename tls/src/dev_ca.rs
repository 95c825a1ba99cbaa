//! A throwaway certificate authority and the leaf certificates it signs, for tests and
//! `cargo xtask up --tls`: never for a server others use (the CA's key is a file anyone on the
//! machine may read).

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A CA made on the spot (ECDSA P-256).
pub struct DevCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

/// A certificate the CA signed, with its key.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The DER SubjectPublicKeyInfo of its key.
    pub spki_der: Vec<u8>,
}

impl DevCa {
    /// A new CA whose certificate says `name`.
    pub fn new(name: &str) -> Result<DevCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(DevCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's certificate, PEM: what clients trust (`--ca-file`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Result<Leaf, rcgen::Error> {
        self.leaf_for_years(names, None)
    }

    /// As [`DevCa::leaf`], valid only from January 1st of the first year to that of the last
    /// (e.g. `(2020, 2021)`: long expired, or `(2999, 3000)`: not valid yet).
    pub fn leaf_valid(&self, names: &[&str], years: (i32, i32)) -> Result<Leaf, rcgen::Error> {
        self.leaf_for_years(names, Some(years))
    }

    fn leaf_for_years(
        &self,
        names: &[&str],
        years: Option<(i32, i32)>,
    ) -> Result<Leaf, rcgen::Error> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some((from, to)) = years {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            spki_der: rcgen::PublicKeyData::subject_public_key_info(&key),
        })
    }
}

/// A self-signed certificate for `names` that says it is a CA's (basicConstraints CA:TRUE), as
/// `openssl req -x509` makes unless told otherwise: what an operator without a CA may serve,
/// and every verifying client refuses as a server's own (`CaUsedAsEndEntity`).
pub fn self_signed_ca_leaf(names: &[&str]) -> Result<Leaf, rcgen::Error> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        spki_der: rcgen::PublicKeyData::subject_public_key_info(&key),
    })
}

impl Leaf {
    /// base64 of the SHA-256 of the key's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub fn spki_sha256_base64(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki_der);
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    }

    /// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem)?;
        write_private(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?
    };
    #[cfg(not(unix))]
    let file = std::fs::File::create(path)?;
    let mut file = file;
    file.write_all(pem.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServerTls, Trust, client_config, server_name};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server with `leaf` on 127.0.0.1; the client trusting `ca_pem`. Returns the client's
    /// outcome of writing and reading one byte.
    async fn handshake(tls: Arc<ServerTls>, ca_pem: &str, dir: &Path) -> std::io::Result<u8> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = tls.acceptor();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await?;
            let mut s = acceptor.accept(s).await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            s.write_all(&b).await?;
            s.flush().await?;
            std::io::Result::Ok(())
        });
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_pem)?;
        let connector = crate::TlsConnector::from(client_config(&Trust::CaFile(ca)).unwrap());
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let result = async {
            let mut s = connector
                .connect(server_name("localhost").unwrap(), tcp)
                .await?;
            s.write_all(b"x").await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            Ok(b[0])
        }
        .await;
        let _ = server.await;
        result
    }

    #[tokio::test]
    async fn trusted_ca_verifies_and_another_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("test CA").unwrap();
        let (cert, key) = ca.leaf(&["localhost"]).unwrap().write(dir.path()).unwrap();
        let tls = Arc::new(ServerTls::load(&cert, &key).unwrap());
        assert_eq!(
            handshake(tls.clone(), ca.cert_pem(), dir.path())
                .await
                .unwrap(),
            b'x'
        );
        let other = DevCa::new("other CA").unwrap();
        let e = handshake(tls, other.cert_pem(), dir.path())
            .await
            .unwrap_err();
        assert!(crate::is_certificate_error(&e), "{e}");
    }

    #[tokio::test]
    async fn reload_swaps_the_certificate_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca1 = DevCa::new("first CA").unwrap();
        let (cert, key) = ca1.leaf(&["localhost"]).unwrap().write(dir.path()).unwrap();
        let tls = Arc::new(ServerTls::load(&cert, &key).unwrap());
        let ca2 = DevCa::new("second CA").unwrap();
        ca2.leaf(&["localhost"]).unwrap().write(dir.path()).unwrap();
        tls.reload().unwrap();
        assert!(
            handshake(tls.clone(), ca2.cert_pem(), dir.path())
                .await
                .is_ok()
        );
        assert!(
            handshake(tls.clone(), ca1.cert_pem(), dir.path())
                .await
                .is_err()
        );
        // A key that is not the certificate's: refused, and the certificate in use stays.
        let stray = ca2.leaf(&["localhost"]).unwrap();
        write_private(&key, &stray.key_pem).unwrap();
        let e = tls.reload().unwrap_err();
        assert!(matches!(e, crate::TlsError::Config { .. }), "{e}");
        std::fs::write(&key, "garbage").unwrap();
        assert!(tls.reload().is_err());
        assert!(handshake(tls, ca2.cert_pem(), dir.path()).await.is_ok());
    }

    /// An operator's renewal that copies an expired certificate (or one not valid yet) into
    /// place: at a reload it is refused and the certificate in use stays, since every client
    /// that verifies would refuse it (until the thirty-first session it was swapped in, and the
    /// server's log said nothing above `DEBUG` while every handshake failed). At start it is
    /// served, with a warning.
    #[tokio::test]
    async fn a_certificate_out_of_its_dates_is_refused_at_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("test CA").unwrap();
        let (cert, key) = ca.leaf(&["localhost"]).unwrap().write(dir.path()).unwrap();
        let tls = Arc::new(ServerTls::load(&cert, &key).unwrap());
        for (years, words) in [
            ((2020, 2021), "expired"),
            ((2999, 3000), "not valid yet"),
            ((2021, 2020), "never valid"),
        ] {
            ca.leaf_valid(&["localhost"], years)
                .unwrap()
                .write(dir.path())
                .unwrap();
            let e = tls.reload().unwrap_err();
            assert!(matches!(e, crate::TlsError::OutOfDate { .. }), "{e}");
            assert!(e.to_string().contains(words), "{e}");
            assert!(
                handshake(tls.clone(), ca.cert_pem(), dir.path())
                    .await
                    .is_ok(),
                "the certificate in use stays"
            );
            // At start there is none to keep: served, and said.
            let started = ServerTls::load(&cert, &key).unwrap();
            assert!(
                handshake(Arc::new(started), ca.cert_pem(), dir.path())
                    .await
                    .is_err()
            );
        }
    }

    #[test]
    fn spki_hash_is_base64_of_32_bytes() {
        let leaf = DevCa::new("x").unwrap().leaf(&["127.0.0.1"]).unwrap();
        let h = leaf.spki_sha256_base64();
        assert_eq!(h.len(), 44, "{h}");
        assert!(h.ends_with('='));
    }
}
