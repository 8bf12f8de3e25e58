//! Certificates made at test time (rcgen): [`Pki`], a CA with a node certificate and a client
//! certificate it signed, and a second CA with a certificate of its own for the same names, all
//! as PEM files in a temporary directory, plus the TLS client configurations that trust them.
//!
//! ```text
//! ca.crt ──signs──▶ node.crt/key   (SAN 127.0.0.1, localhost; serverAuth + clientAuth: a node's
//!                                    transports present it, and so do its bridges)
//!        ──signs──▶ client.crt/key (clientAuth: an application with needClientAuth)
//! rogue-ca ─signs─▶ rogue.crt/key  (same names, not trusted by ca.crt)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mq_shared::tls::{self, ClientConfig, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// Names every server certificate here is valid for.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A CA, the certificates it signed and one it did not, as PEM files.
pub struct Pki {
    dir: TempDir,
    /// The CA certificate (`--tls-ca`).
    pub ca: PathBuf,
    /// A node certificate signed by the CA (`--tls-cert`).
    pub node_cert: PathBuf,
    /// Its key (`--tls-key`).
    pub node_key: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A server certificate for the same names, signed by another CA.
    pub rogue_cert: PathBuf,
    /// Its key.
    pub rogue_key: PathBuf,
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

/// Writes `NAME.crt` and `NAME.key`, a leaf for `sans` signed by `issuer`.
fn leaf(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    sans: &[&str],
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> (PathBuf, PathBuf) {
    let make = || -> Result<(String, String), rcgen::Error> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usages;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (cert, key) = make().unwrap_or_else(|e| panic!("making certificate {name}: {e}"));
    let paths = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    write(&paths.0, &cert);
    write(&paths.1, &key);
    paths
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

impl Pki {
    /// Makes the CA and the certificates in a fresh temporary directory.
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("mq-pki-")
            .tempdir()
            .expect("a temporary directory for certificates");
        let root = ca("mq test CA").expect("making the test CA");
        let ca_path = dir.path().join("ca.crt");
        write(&ca_path, &root.pem());
        let both = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let (node_cert, node_key) = leaf(dir.path(), "node", &root, &SERVER_NAMES, both);
        let (client_cert, client_key) = leaf(
            dir.path(),
            "client",
            &root,
            &["app"],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        );
        let other = ca("someone else's CA").expect("making the second CA");
        let (rogue_cert, rogue_key) = leaf(
            dir.path(),
            "rogue",
            &other,
            &SERVER_NAMES,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        Pki {
            dir,
            ca: ca_path,
            node_cert,
            node_key,
            client_cert,
            client_key,
            rogue_cert,
            rogue_key,
        }
    }

    /// `--tls-cert NODE --tls-key NODE --tls-ca CA`: the flags of a node with the CA's
    /// certificate.
    pub fn node_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.node_cert.display().to_string(),
            "--tls-key".into(),
            self.node_key.display().to_string(),
            "--tls-ca".into(),
            self.ca.display().to_string(),
        ]
    }

    /// The temporary directory the files are in (removed with the `Pki`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The node's certificate and key, trusting the CA for client certificates: what a TLS
    /// transport is given.
    pub fn node_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.node_cert.clone(),
            key: self.node_key.clone(),
            ca: Some(self.ca.clone()),
        }
    }

    /// The certificate and key of the other CA, trusting no CA.
    pub fn rogue_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.rogue_cert.clone(),
            key: self.rogue_key.clone(),
            ca: None,
        }
    }

    /// A client trusting the CA, presenting no certificate.
    pub fn client(&self) -> Arc<ClientConfig> {
        tls::client_config(&self.ca, None).expect("a client configuration trusting the CA")
    }

    /// A client trusting the CA and presenting the CA-signed client certificate.
    pub fn client_with_cert(&self) -> Arc<ClientConfig> {
        tls::client_config(&self.ca, Some((&self.client_cert, &self.client_key)))
            .expect("a client configuration with a client certificate")
    }

    /// A client trusting the CA and presenting a certificate of the other CA.
    pub fn client_with_rogue_cert(&self) -> Arc<ClientConfig> {
        tls::client_config(&self.ca, Some((&self.rogue_cert, &self.rogue_key)))
            .expect("a client configuration with a foreign certificate")
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}
