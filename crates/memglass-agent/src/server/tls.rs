//! TLS with rustls (the ring provider, TLS 1.2 and 1.3 only), and a certificate that is
//! read again when its files change: the kubelet replaces a mounted Secret's files (an
//! atomic swap of the `..data` symlink) when cert-manager or an operator renews it, and
//! the agent serves the new certificate from the next handshake, without a restart
//! (sessions are not resumed, so every connection has a handshake that sends it).
//!
//! At most once a second, a handshake compares the files' stamps (device, inode, size,
//! modification time; `stat` follows the Secret's symlinks) with the last ones seen. When
//! they changed, both files are read again; a chain and key that load and match replace
//! the served ones, anything else keeps the previous certificate and prints one warning
//! (one per change of the files, not per handshake).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::TlsFiles;
use crate::error::{Error, Result};

/// How often a handshake may look at the files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The server side of TLS for [`super::serve`]: read the files once (an error here is the
/// agent's start failing), then keep them fresh.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = Reloading::new(files.clone(), Arc::clone(&provider))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Tls {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: a resumed session skips the certificate, so a client would
    // keep seeing the one replaced; every connection gets the current certificate (a full
    // handshake costs well under a millisecond, and scrapes are seconds apart).
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The served certificate and what is known of its files.
#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    check: Mutex<Check>,
}

#[derive(Debug)]
struct Check {
    /// The stamps of the last files read (loaded or not).
    stamps: [Option<Stamp>; 2],
    last: Instant,
}

/// What changes when a file is replaced or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

impl Reloading {
    fn new(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Reloading> {
        let stamps = [Stamp::of(&files.cert), Stamp::of(&files.key)];
        let key = load(&files, &provider)?;
        Ok(Reloading {
            current: ArcSwap::from_pointee(key),
            check: Mutex::new(Check {
                stamps,
                last: Instant::now(),
            }),
            files,
            provider,
        })
    }

    /// Read the files again when their stamps changed (at most once per [`CHECK_EVERY`];
    /// a handshake that finds another one checking does not wait).
    fn refresh(&self) {
        let Ok(mut check) = self.check.try_lock() else {
            return;
        };
        if check.last.elapsed() < CHECK_EVERY {
            return;
        }
        check.last = Instant::now();
        let stamps = [Stamp::of(&self.files.cert), Stamp::of(&self.files.key)];
        if stamps == check.stamps {
            return;
        }
        check.stamps = stamps;
        match load(&self.files, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                eprintln!(
                    "memglass: TLS certificate reloaded from {}",
                    self.files.cert.display()
                );
            }
            Err(error) => {
                eprintln!("memglass: warning: {error}; still serving the previous certificate")
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current.load_full())
    }
}

/// The chain and key of `files`, checked to belong together.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let cert_error = |reason: String| Error::Tls {
        path: files.cert.clone(),
        reason,
    };
    let key_error = |reason: String| Error::Tls {
        path: files.key.clone(),
        reason,
    };
    let pem = std::fs::read(&files.cert).map_err(|e| cert_error(e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block in the file".into()));
    }
    let pem = std::fs::read(&files.key).map_err(|e| key_error(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| key_error(format!("no PEM private key (PKCS#8, RSA or EC): {e}")))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            key_error(format!("does not belong to {}", files.cert.display()))
        }
        other => key_error(other.to_string()),
    })
}
