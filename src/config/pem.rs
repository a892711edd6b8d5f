//! PEM values of the config file (`tls_pem`, `backends`, `ca_certs`, `nats.*`) read into
//! rustls' types: a list of certificates, or a certificate chain with its private key. Reading
//! only: what the material is used for (a listener, a client) is decided where it is used.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::ConfigError;

/// The certificates in a PEM text (unparsable blocks are skipped).
pub fn certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// The certificates in a PEM text, every block readable: the first one that is not is the
/// error (for `ca_certs` and `backends.cert_chain`, whose broken blocks were always refused).
pub fn readable_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no '-----BEGIN CERTIFICATE-----' block found; give PEM certificates".into());
    }
    Ok(certs)
}

/// A certificate chain and its private key, as a TLS server or a client presents them. Its
/// `Debug` never shows the key.
pub struct KeyPair {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for KeyPair {
    fn clone(&self) -> KeyPair {
        KeyPair {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Reads `cert_chain` and `private_key` of the config section `section` (named in the error).
    pub fn from_pem(
        section: &str,
        cert_chain: &str,
        private_key: &str,
    ) -> Result<KeyPair, ConfigError> {
        let chain = certificates(cert_chain);
        if chain.is_empty() {
            return Err(ConfigError::invalid(
                format!("{section}.cert_chain"),
                "contains no PEM certificate",
            ));
        }
        match rustls_pemfile::private_key(&mut private_key.as_bytes()) {
            Ok(Some(key)) => Ok(KeyPair { chain, key }),
            _ => Err(ConfigError::invalid(
                format!("{section}.private_key"),
                "contains no PEM private key (PKCS#1, PKCS#8 or SEC1)",
            )),
        }
    }
}
