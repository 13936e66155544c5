//! TLS for the client connection (rustls with ring, as async-nats ships it).
//!
//! With a CA file we build the rustls config ourselves, so that the certificate is checked
//! against the server's real name even when the connection goes to a local forwarder on
//! 127.0.0.1, and so that a bad file is named before any connection is tried.

use super::error::SysError;
use super::options::TlsFiles;
use async_nats::rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS decided once; applied to each fresh set of async-nats options.
pub(crate) enum TlsPlan {
    /// Our own rustls config (CA file given): verifies against a fixed name.
    Config(Box<rustls::ClientConfig>),
    /// async-nats' own config with the system roots, optionally with a client certificate.
    System { client: Option<(PathBuf, PathBuf)> },
}

impl TlsPlan {
    pub(crate) fn apply(&self, base: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        match self {
            TlsPlan::Config(c) => base.require_tls(true).tls_client_config((**c).clone()),
            TlsPlan::System { client } => {
                let base = base.require_tls(true);
                match client {
                    Some((c, k)) => base.add_client_certificate(c.clone(), k.clone()),
                    None => base,
                }
            }
        }
    }
}

/// Reads and checks the TLS files. `default_name` is the host the certificate must name
/// when `server_name` is not set; `tunnel` says the connection goes to a local forwarder.
pub(crate) fn plan(t: &TlsFiles, default_name: &str, tunnel: bool) -> Result<TlsPlan, SysError> {
    let client_pair = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(SysError::Options(
                "a TLS client certificate needs both cert_file and key_file".into(),
            ))
        }
    };
    let Some(ca) = &t.ca_file else {
        if tunnel || t.server_name.is_some() {
            return Err(SysError::Options(
                "TLS through a tunnel or with server_name needs ca_file (the certificate is \
                 checked against the server's name, not 127.0.0.1)"
                    .into(),
            ));
        }
        if let Some((c, k)) = &client_pair {
            readable("TLS certificate", c)?;
            readable("TLS key", k)?;
        }
        return Ok(TlsPlan::System {
            client: client_pair,
        });
    };
    let name = t.server_name.as_deref().unwrap_or(default_name);
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| SysError::Options(format!("{name:?} is not a TLS server name: {e}")))?;
    let config = client_config(ca, client_pair.as_ref(), name)?;
    Ok(TlsPlan::Config(Box::new(config)))
}

fn client_config(
    ca: &Path,
    client: Option<&(PathBuf, PathBuf)>,
    name: ServerName<'static>,
) -> Result<rustls::ClientConfig, SysError> {
    let file_err = |what: &'static str, path: &Path, reason: String| SysError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = read_certs("CA file", ca)?;
    for c in certs {
        roots
            .add(c)
            .map_err(|e| file_err("CA file", ca, e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| file_err("CA file", ca, e.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SysError::Options(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner, name }));
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = read_certs("TLS certificate", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_err("TLS key", key, e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| file_err("TLS certificate", cert, e.to_string()))
        }
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SysError> {
    let err = |reason: String| SysError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn readable(what: &'static str, path: &Path) -> Result<(), SysError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| SysError::File {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// WebPKI verification against a fixed name instead of the address we dialled.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
