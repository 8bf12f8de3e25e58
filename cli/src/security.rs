//! What makes a cluster secure by default: a client user `app`, a bridge user `broker` and a
//! discovery secret, random, kept in the cluster folder's `credentials.json` (mode 0600); the
//! security file every node runs with; and, with `--tls`, a CA and a certificate per node
//! (rcgen), so transports and links speak `ssl://`.
//!
//! ```text
//! clusters/NAME/credentials.json   {"app": "...", "broker": "...", "discovery_secret": "..."}  0600
//! clusters/NAME/security.toml      users app (group apps) and broker (group brokers, a bridge
//!                                  group), both allowed everything on queue://> and topic://>
//! clusters/NAME/tls/ca.pem, ca.key, NODE.pem, NODE.key                                      keys 0600
//! ```

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mq_shared::client::ConnectOptions;
use mq_shared::ctl::ClusterManifest;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// The client user every mqctl command logs in as.
pub const APP_USER: &str = "app";
/// The user bridges log in as.
pub const BRIDGE_USER: &str = "broker";

/// The cluster's secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// Password of [`APP_USER`].
    pub app: String,
    /// Password of [`BRIDGE_USER`].
    pub broker: String,
    /// Secret that signs multicast advertisements (`multicast://default?secret=...`).
    pub discovery_secret: String,
}

/// A random password of 32 hex digits (128 bits).
fn random_secret() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::io("could not write", path, e))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(text.as_bytes()))
        .map_err(|e| CliError::io("could not write", path, e))
}

/// Makes the credentials and the security file of a new cluster in `dir`; returns their
/// paths.
pub fn create(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let creds = Credentials {
        app: random_secret(),
        broker: random_secret(),
        discovery_secret: random_secret(),
    };
    let hash = |p: &str| {
        mq_shared::password::hash(p)
            .map(|h| h.to_string())
            .map_err(|e| CliError::Usage(format!("cannot hash a password: {e}")))
    };
    let security = format!(
        "# Written by mqctl cluster create. Users log in with the passwords in credentials.json.\n\
         anonymous = false\n\
         bridge-groups = [\"brokers\"]\n\n\
         [[users]]\nname = \"{APP_USER}\"\npassword = \"{}\"\ngroups = [\"apps\"]\n\n\
         [[users]]\nname = \"{BRIDGE_USER}\"\npassword = \"{}\"\ngroups = [\"brokers\"]\n\n\
         [[authorization]]\ndestination = \"queue://>\"\nread = [\"apps\", \"brokers\"]\n\
         write = [\"apps\", \"brokers\"]\nadmin = [\"apps\", \"brokers\"]\n\n\
         [[authorization]]\ndestination = \"topic://>\"\nread = [\"apps\", \"brokers\"]\n\
         write = [\"apps\", \"brokers\"]\nadmin = [\"apps\", \"brokers\"]\n",
        hash(&creds.app)?,
        hash(&creds.broker)?,
    );
    let creds_path = dir.join("credentials.json");
    let security_path = dir.join("security.toml");
    let json = serde_json::to_string_pretty(&creds)
        .map_err(|e| CliError::Usage(format!("cannot write the credentials: {e}")))?;
    write_private(&creds_path, &json)?;
    write_private(&security_path, &security)?;
    Ok((security_path, creds_path))
}

/// The cluster's credentials, if it has any (a cluster created before they existed has none).
pub fn credentials(manifest: &ClusterManifest) -> Result<Option<Credentials>> {
    let Some(path) = &manifest.credentials_file else {
        return Ok(None);
    };
    let text =
        fs::read_to_string(path).map_err(|e| CliError::io("could not read", Path::new(path), e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| CliError::Usage(format!("{path} is not valid JSON: {e}")))
}

/// Makes a CA and a certificate per node (for 127.0.0.1 and localhost, usable as a server and
/// as a client: bridges present it) in `dir/tls`.
pub fn create_tls(dir: &Path, nodes: &[String]) -> Result<PathBuf> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).map_err(|e| CliError::io("could not create", &tls, e))?;
    let fail = |e: rcgen::Error| CliError::Usage(format!("cannot make certificates: {e}"));
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "mq cluster CA");
    let issuer =
        CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(fail)?).map_err(fail)?;
    let ca_path = tls.join("ca.pem");
    fs::write(&ca_path, issuer.pem()).map_err(|e| CliError::io("could not write", &ca_path, e))?;
    for node in nodes {
        let key = KeyPair::generate().map_err(fail)?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(fail)?;
        params
            .distinguished_name
            .push(DnType::CommonName, node.as_str());
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).map_err(fail)?;
        let cert_path = tls.join(format!("{node}.pem"));
        fs::write(&cert_path, cert.pem())
            .map_err(|e| CliError::io("could not write", &cert_path, e))?;
        write_private(&tls.join(format!("{node}.key")), &key.serialize_pem())?;
    }
    Ok(tls)
}

/// The flags that start `node` with the cluster's security file and TLS files.
pub fn node_args(manifest: &ClusterManifest, node: &str) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(f) = &manifest.security_file {
        args.extend(["--security".to_string(), f.clone()]);
    }
    if let Some(dir) = &manifest.tls_dir {
        let dir = Path::new(dir);
        let p = |f: String| dir.join(f).to_string_lossy().into_owned();
        args.extend([
            "--tls-cert".to_string(),
            p(format!("{node}.pem")),
            "--tls-key".to_string(),
            p(format!("{node}.key")),
            "--tls-ca".to_string(),
            p("ca.pem".to_string()),
        ]);
    }
    args
}

/// How mqctl's STOMP clients connect to the cluster's nodes: as `app`, trusting its CA.
pub fn stomp_options(manifest: &ClusterManifest) -> Result<ConnectOptions> {
    let mut opts = ConnectOptions::default();
    if let Some(c) = credentials(manifest)? {
        opts.login = Some(APP_USER.to_string());
        opts.passcode = Some(c.app);
    }
    if let Some(dir) = &manifest.tls_dir {
        let ca = Path::new(dir).join("ca.pem");
        let cfg = mq_shared::tls::client_config(&ca, None)
            .map_err(|e| CliError::Usage(format!("cannot use the cluster's CA: {e}")))?;
        opts.tls = Some(Arc::clone(&cfg));
    }
    Ok(opts)
}

/// A link's connector URI with the bridge user's login added (the manifest keeps it without).
pub fn link_uri_with_login(manifest: &ClusterManifest, uri: &str) -> Result<String> {
    Ok(match credentials(manifest)? {
        Some(c) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}userName={BRIDGE_USER}&password={}", c.broker)
        }
        None => uri.to_string(),
    })
}

/// `mqctl security hash-password`: the argon2id PHC string of the password on stdin (one
/// trailing newline ignored), for a security file's `password` key.
pub fn hash_password(input: &str) -> Result<String> {
    let password = mq_shared::password::from_stdin_text(input);
    if password.is_empty() {
        return Err(CliError::Usage(
            "no password on stdin (an empty password is refused)".into(),
        ));
    }
    mq_shared::password::hash(password)
        .map(|h| h.to_string())
        .map_err(|e| CliError::Usage(format!("cannot hash the password: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_one_newline_is_ignored() -> Result<()> {
        let h = hash_password("s3cret\n")?;
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(mq_shared::password::verify("s3cret", &h).ok(), Some(true));
        assert!(hash_password("\n").is_err());
        Ok(())
    }
}
