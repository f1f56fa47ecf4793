//! The control plane's certificates and keys, generated fresh for every run (rcgen, ECDSA P-256).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the control plane and its clients authenticate with.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: CertFiles,
    pub ca_pem: String,
    /// The API server's serving certificate (127.0.0.1, localhost, the `kubernetes` Service names).
    pub serving: CertFiles,
    /// The service-account token signing key (private, PKCS#8) and its public half.
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
    /// Front-proxy CA and the client certificate the API server shows aggregated API servers.
    pub front_proxy_ca: CertFiles,
    pub front_proxy_client: CertFiles,
    dir: PathBuf,
    issuer: IssuerPem,
}

#[derive(Debug, Clone)]
struct IssuerPem {
    params_cn: String,
    key_pem: String,
}

fn err(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("generating a certificate: {e}"))
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p
}

fn write_pair(dir: &Path, name: &str, cert_pem: &str, key_pem: &str) -> io::Result<CertFiles> {
    let files = CertFiles { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
    fs::write(&files.cert, cert_pem)?;
    fs::write(&files.key, key_pem)?;
    Ok(files)
}

impl Pki {
    /// Generates a CA, the serving certificate and the service-account key into `dir`.
    pub fn generate(dir: &Path) -> io::Result<Pki> {
        fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cn = "mlsched-e2e-ca";
        let ca_cert = ca_params(ca_cn).self_signed(&ca_key).map_err(err)?;
        let ca = write_pair(dir, "ca", &ca_cert.pem(), &ca_key.serialize_pem())?;
        let issuer = IssuerPem { params_cn: ca_cn.into(), key_pem: ca_key.serialize_pem() };

        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
        ])
        .map_err(err)?;
        serving.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        serving.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = KeyPair::generate().map_err(err)?;
        let serving_cert = serving.signed_by(&serving_key, &issuer.issuer()?).map_err(err)?;
        let serving = write_pair(dir, "apiserver", &serving_cert.pem(), &serving_key.serialize_pem())?;

        let sa_key = KeyPair::generate().map_err(err)?;
        let service_account_key = dir.join("sa.key");
        let service_account_pub = dir.join("sa.pub");
        fs::write(&service_account_key, sa_key.serialize_pem())?;
        fs::write(&service_account_pub, sa_key.public_key_pem())?;

        let fp_key = KeyPair::generate().map_err(err)?;
        let fp_params = ca_params("mlsched-e2e-front-proxy-ca");
        let fp_cert = fp_params.self_signed(&fp_key).map_err(err)?;
        let front_proxy_ca = write_pair(dir, "front-proxy-ca", &fp_cert.pem(), &fp_key.serialize_pem())?;
        let fp_issuer = Issuer::new(fp_params, fp_key);
        let (client_cert, client_key) = client_cert("front-proxy-client", &[], &fp_issuer)?;
        let front_proxy_client = write_pair(dir, "front-proxy-client", &client_cert, &client_key)?;

        Ok(Pki {
            ca,
            ca_pem: ca_cert.pem(),
            serving,
            service_account_key,
            service_account_pub,
            front_proxy_ca,
            front_proxy_client,
            dir: dir.to_path_buf(),
            issuer,
        })
    }

    /// A client certificate for user `cn` in `groups`, signed by the cluster CA, written as `<file>.crt/.key`.
    pub fn client(&self, file: &str, cn: &str, groups: &[&str]) -> io::Result<CertFiles> {
        let (cert, key) = client_cert(cn, groups, &self.issuer.issuer()?)?;
        write_pair(&self.dir, file, &cert, &key)
    }
}

impl IssuerPem {
    fn issuer(&self) -> io::Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::from_pem(&self.key_pem).map_err(err)?;
        Ok(Issuer::new(ca_params(&self.params_cn), key))
    }
}

fn client_cert(cn: &str, groups: &[&str], issuer: &Issuer<'_, KeyPair>) -> io::Result<(String, String)> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    for g in groups {
        p.distinguished_name.push(DnType::OrganizationName, *g);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().map_err(err)?;
    let cert = p.signed_by(&key, issuer).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}
