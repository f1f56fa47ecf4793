//! The Kubernetes client of both binaries, found the way kubectl finds its cluster (`KUBECONFIG`, else
//! `~/.kube/config`, else the in-cluster service account), with start-up errors that name the kubeconfig,
//! its user and the field at fault.
//!
//! The TLS stack checks the client certificate only when it pairs it with the key, so an unusable
//! certificate (an X.509 v1 one, say) surfaces as `invalid private key: ... UnsupportedCertVersion`, which
//! points at the wrong file. When building the client fails, the certificate and key the kubeconfig names
//! are looked at here and the message says what is wrong with which of them.

use std::fmt;
use std::path::PathBuf;

use kube::config::{AuthInfo, Kubeconfig};

/// Where the client configuration came from: the kubeconfig file(s) and the user of the current context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `None` for the in-cluster service account.
    pub kubeconfig: Option<String>,
    pub user: Option<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kubeconfig, &self.user) {
            (None, _) => write!(f, "in-cluster service account"),
            (Some(files), Some(user)) => write!(f, "kubeconfig {files}, user {user:?}"),
            (Some(files), None) => write!(f, "kubeconfig {files}"),
        }
    }
}

impl Origin {
    /// What `kube::Config::infer` reads: the files of `KUBECONFIG`, else `~/.kube/config`; if neither can be
    /// read, the in-cluster service account.
    pub fn detect() -> Origin {
        let files = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(v) => format!("{} (KUBECONFIG)", v.to_string_lossy()),
            None => std::env::home_dir()
                .map(|h| h.join(".kube").join("config").display().to_string())
                .unwrap_or_else(|| "~/.kube/config".into()),
        };
        match Kubeconfig::read() {
            Ok(kubeconfig) => Origin::of(files, &kubeconfig),
            Err(_) => Origin { kubeconfig: None, user: None },
        }
    }

    /// `files` (as they should be named in messages) holding `kubeconfig`.
    pub fn of(files: String, kubeconfig: &Kubeconfig) -> Origin {
        let user = kubeconfig
            .current_context
            .as_ref()
            .and_then(|current| kubeconfig.contexts.iter().find(|c| &c.name == current))
            .and_then(|c| c.context.as_ref()?.user.clone());
        Origin { kubeconfig: Some(files), user }
    }
}

/// The client, from the environment; see the module documentation.
pub async fn client() -> anyhow::Result<kube::Client> {
    let (config, origin) = inferred().await?;
    client_from(config, &origin)
}

/// The client, from the environment, and a second one like it without kube's own retries of 429, 503 and
/// 504 answers (up to 15 of them, after the server's `Retry-After`), for requests whose 429 is an answer,
/// not a throttle: an eviction's 429 is a PodDisruptionBudget's refusal, which those retries would repeat
/// for minutes.
pub async fn client_and_one_without_retries() -> anyhow::Result<(kube::Client, kube::Client)> {
    let (config, origin) = inferred().await?;
    let mut without_retries = config.clone();
    without_retries.default_retry = false;
    Ok((client_from(config, &origin)?, client_from(without_retries, &origin)?))
}

async fn inferred() -> anyhow::Result<(kube::Config, Origin)> {
    let origin = Origin::detect();
    let config = kube::Config::infer().await.map_err(|e| anyhow::anyhow!("no usable cluster configuration: {e}"))?;
    Ok((config, origin))
}

/// The client for `config`, which was read from `origin`.
pub fn client_from(config: kube::Config, origin: &Origin) -> anyhow::Result<kube::Client> {
    let auth = config.auth_info.clone();
    kube::Client::try_from(config).map_err(|e| anyhow::anyhow!(explain(&e, &auth, origin)))
}

/// The message for a client that could not be built: the certificate's or key's own problem when one can be
/// named, else the client's error, always with the kubeconfig and user it is about.
fn explain(error: &kube::Error, auth: &AuthInfo, origin: &Origin) -> String {
    let cert = Source::certificate(auth);
    let key = Source::key(auth);
    if let Some(cert) = &cert {
        match cert.load() {
            Err(e) => return format!("{origin}: {cert} {e}"),
            Ok(pem) => {
                if let Some(problem) = certificate_problem(&pem) {
                    return format!("{origin}: {cert} {problem}");
                }
            }
        }
    }
    if let (Some(cert), Some(key)) = (&cert, &key)
        && key_mismatch(error)
    {
        return format!("{origin}: {key} is not the private key of {cert} (the two files do not belong together)");
    }
    format!("{origin}: {}", error_chain(error))
}

/// The client's error and its sources, without the repeats (kube's messages embed their source's text).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

fn key_mismatch(error: &kube::Error) -> bool {
    use kube::client::RustlsTlsError;
    matches!(
        error,
        kube::Error::RustlsTls(RustlsTlsError::InvalidPrivateKey(rustls::Error::InconsistentKeys(
            rustls::InconsistentKeys::KeyMismatch
        )))
    )
}

/// A certificate or key as the kubeconfig gives it: inline (`*-data`, base64) or a file.
enum Source {
    Data { field: &'static str, base64: String },
    File { field: &'static str, path: PathBuf },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Data { field, .. } => write!(f, "{field}"),
            Source::File { field, path } => write!(f, "{field} {}", path.display()),
        }
    }
}

impl Source {
    /// As kube reads it: the inline data wins over the file.
    fn certificate(auth: &AuthInfo) -> Option<Source> {
        match (&auth.client_certificate_data, &auth.client_certificate) {
            (Some(data), _) => Some(Source::Data { field: "client-certificate-data", base64: data.clone() }),
            (None, Some(path)) => Some(Source::File { field: "client-certificate", path: path.into() }),
            (None, None) => None,
        }
    }

    /// Named in messages only, never read here: it is a secret.
    fn key(auth: &AuthInfo) -> Option<Source> {
        match (&auth.client_key_data, &auth.client_key) {
            (Some(_), _) => Some(Source::Data { field: "client-key-data", base64: String::new() }),
            (None, Some(path)) => Some(Source::File { field: "client-key", path: path.into() }),
            (None, None) => None,
        }
    }

    fn load(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        match self {
            Source::Data { base64, .. } => base64::engine::general_purpose::STANDARD
                .decode(base64.trim())
                .map_err(|e| format!("is not valid base64: {e}")),
            Source::File { path, .. } => std::fs::read(path).map_err(|e| format!("cannot be read: {e}")),
        }
    }
}

/// What makes a PEM client certificate unusable for the client (`None`: nothing found here).
pub fn certificate_problem(pem_text: &[u8]) -> Option<String> {
    let blocks = match pem::parse_many(pem_text) {
        Ok(blocks) => blocks,
        Err(e) => return Some(format!("is not valid PEM: {e}")),
    };
    let Some(first) = blocks.iter().find(|b| b.tag() == "CERTIFICATE") else {
        return Some("holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)".into());
    };
    match x509_version(first.contents()) {
        None => Some("is not a DER-encoded X.509 certificate".into()),
        Some(3) => None,
        Some(v) => Some(format!(
            "is an X.509 v{v} certificate, and the client accepts only v3 ones (with extensions); issue it \
             again as v3, for example with `openssl x509 -req ... -extfile` naming `extendedKeyUsage = clientAuth`"
        )),
    }
}

/// The version (1, 2 or 3) of a DER certificate: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
/// version [0] EXPLICIT INTEGER DEFAULT v1, ... } ... }`, where the INTEGER is the version minus one.
pub fn x509_version(der: &[u8]) -> Option<u8> {
    let (tag, certificate, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_element(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, explicit, _) = der_element(tbs)?;
    if tag != 0xa0 {
        return Some(1);
    }
    match der_element(explicit)? {
        (0x02, [v], _) if *v <= 2 => Some(v + 1),
        _ => None,
    }
}

/// One DER element: `(tag, contents, rest)`; single-byte tags, definite lengths up to 4 bytes.
pub fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
#[path = "kube_client_tests.rs"]
mod tests;
