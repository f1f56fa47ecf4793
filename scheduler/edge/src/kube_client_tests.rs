use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::*;

/// A DER element with `tag` around `contents`.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// The same certificate as X.509 v1: without the version field and the extensions (which only v3 has).
/// The signature no longer matches, which the client never checks on its own certificate.
fn as_v1(v3: &[u8]) -> Vec<u8> {
    let (_, certificate, _) = der_element(v3).unwrap();
    let (_, tbs, after_tbs) = der_element(certificate).unwrap();
    let mut fields = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() {
        let (tag, contents, next) = der_element(rest).unwrap();
        if tag != 0xa0 && tag != 0xa3 {
            fields.extend(der(tag, contents));
        }
        rest = next;
    }
    let mut body = der(0x30, &fields);
    body.extend_from_slice(after_tbs);
    der(0x30, &body)
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

struct Pki {
    dir: PathBuf,
    ca_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("mlsched-edge-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut client = CertificateParams::default();
    client.distinguished_name.push(DnType::CommonName, "system:kube-scheduler");
    let key = KeyPair::generate().unwrap();
    let cert = client.signed_by(&key, &issuer).unwrap();
    Pki { dir, ca_pem: ca_cert.pem(), cert_der: cert.der().to_vec(), key_pem: key.serialize_pem() }
}

/// A kubeconfig for user `bench` whose client certificate and key are `cert` and `key` (YAML fields).
fn kubeconfig(dir: &Path, ca_pem: &str, user: &str) -> PathBuf {
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, ca_pem).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    \
             certificate-authority: {}\nusers:\n- name: bench\n  user:\n{user}contexts:\n- name: c\n  context:\n    \
             cluster: c\n    user: bench\ncurrent-context: c\n",
            ca.display()
        ),
    )
    .unwrap();
    path
}

async fn build(path: &Path) -> (Result<kube::Client, String>, Result<kube::Client, kube::Error>) {
    let kc = Kubeconfig::read_from(path).unwrap();
    let origin = Origin::of(path.display().to_string(), &kc);
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let raw = kube::Client::try_from(config.clone());
    (client_from(config, &origin).map_err(|e| format!("{e:#}")), raw)
}

#[test]
fn reads_the_version_of_a_certificate() {
    let p = pki("version");
    assert_eq!(x509_version(&p.cert_der), Some(3));
    assert_eq!(x509_version(&as_v1(&p.cert_der)), Some(1));
    assert_eq!(x509_version(b"\x30\x03\x02\x01\x00"), None);
    assert_eq!(x509_version(b""), None);
    assert_eq!(certificate_problem(pem_of(&p.cert_der).as_bytes()), None);
    assert!(certificate_problem(pem_of(&as_v1(&p.cert_der)).as_bytes()).unwrap().contains("X.509 v1"));
    assert!(certificate_problem(p.key_pem.as_bytes()).unwrap().contains("no PEM certificate"));
    let _ = std::fs::remove_dir_all(p.dir);
}

#[tokio::test]
async fn a_v1_client_certificate_is_named_as_the_cause() {
    let p = pki("v1");
    let cert = p.dir.join("client.crt");
    let key = p.dir.join("client.key");
    std::fs::write(&cert, pem_of(&as_v1(&p.cert_der))).unwrap();
    std::fs::write(&key, &p.key_pem).unwrap();
    let user = format!("    client-certificate: {}\n    client-key: {}\n", cert.display(), key.display());
    let path = kubeconfig(&p.dir, &p.ca_pem, &user);
    let (ours, raw) = build(&path).await;
    // What the TLS stack says blames the key.
    let raw = raw.err().expect("a v1 certificate is refused").to_string();
    assert!(raw.contains("private key"), "{raw}");
    let message = ours.err().expect("refused");
    assert!(message.contains(&format!("kubeconfig {}, user \"bench\"", path.display())), "{message}");
    assert!(message.contains(&format!("client-certificate {} is an X.509 v1 certificate", cert.display())));
    assert!(message.contains("only v3"), "{message}");
    assert!(!message.contains("private key"), "{message}");
    let _ = std::fs::remove_dir_all(p.dir);
}

#[tokio::test]
async fn inline_certificates_and_mismatched_keys_are_named_too() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let p = pki("inline");
    let v1 = pem_of(&as_v1(&p.cert_der));
    let user = format!("    client-certificate-data: {}\n    client-key-data: {}\n", b64(&v1), b64(&p.key_pem));
    let (ours, _) = build(&kubeconfig(&p.dir, &p.ca_pem, &user)).await;
    assert!(ours.err().unwrap().contains("client-certificate-data is an X.509 v1 certificate"));

    let other = KeyPair::generate().unwrap().serialize_pem();
    let v3 = pem_of(&p.cert_der);
    let key = p.dir.join("other.key");
    std::fs::write(&key, other).unwrap();
    let user = format!("    client-certificate-data: {}\n    client-key: {}\n", b64(&v3), key.display());
    let (ours, _) = build(&kubeconfig(&p.dir, &p.ca_pem, &user)).await;
    let message = ours.err().expect("a key of another certificate is refused");
    assert!(
        message.contains(&format!("client-key {} is not the private key of client-certificate-data", key.display())),
        "{message}"
    );

    let missing = p.dir.join("missing.crt");
    let user = format!("    client-certificate: {}\n    client-key: {}\n", missing.display(), key.display());
    let (ours, _) = build(&kubeconfig(&p.dir, &p.ca_pem, &user)).await;
    let message = ours.err().expect("a missing file is refused");
    assert!(message.contains(&format!("client-certificate {} cannot be read", missing.display())), "{message}");

    let user = format!("    client-certificate-data: {}\n    client-key-data: {}\n", b64(&v3), b64(&p.key_pem));
    let (ours, _) = build(&kubeconfig(&p.dir, &p.ca_pem, &user)).await;
    assert!(ours.is_ok(), "a v3 certificate with its key builds a client: {:?}", ours.err());
    let _ = std::fs::remove_dir_all(p.dir);
}
