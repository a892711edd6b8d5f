//! The simulated foundation's certificate authority: one CA generated per foundation, and a
//! leaf certificate per TLS instance whose only SAN is the instance GUID, as Diego issues them.
//! Builds rustls server configurations; accepts no connection itself.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A CA that signs instance certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl DevCa {
    /// Generates a fresh CA (ECDSA P-256).
    pub fn generate() -> io::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "promfetcher dev instance identity CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "promfetcher dev");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().map_err(tls_error)?;
        let cert = params.self_signed(&key).map_err(tls_error)?;
        Ok(DevCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS acceptor presenting a fresh leaf certificate for `san` (the instance GUID, also the
    /// common name), chained to this CA. Offers only HTTP/1.1 through ALPN.
    pub fn acceptor_for(&self, san: &str) -> io::Result<TlsAcceptor> {
        let mut params = CertificateParams::new(vec![san.to_owned()]).map_err(tls_error)?;
        params.distinguished_name.push(DnType::CommonName, san);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(tls_error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(tls_error)?;
        let chain = vec![cert.der().clone(), self.cert_der.clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(tls_error)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("dev foundation TLS setup failed: {e}"))
}
