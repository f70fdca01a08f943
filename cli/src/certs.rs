//! `berth certs`: the CA, server and client certificates that Docker's "protect the daemon
//! socket" guide makes with openssl, made with rcgen instead. File names follow that guide:
//! `ca.pem`, `server-cert.pem`, `server-key.pem`, `cert.pem`, `key.pem` (the client's), so
//! `docker --tlsverify` finds them in `~/.docker` or `DOCKER_CERT_PATH`.

use std::{os::unix::fs::PermissionsExt, path::PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory to write the files into (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A DNS name or IP address the server is reached by (repeat for several).
    #[arg(long = "host", value_name = "NAME", required = true)]
    pub hosts: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

fn params(cn: &str, sans: Vec<String>, days: i64) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(days);
    Ok(p)
}

pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.days > 0, "--days must be positive");
    std::fs::create_dir_all(&args.out)?;
    let files = [
        "ca.pem",
        "ca-key.pem",
        "server-cert.pem",
        "server-key.pem",
        "cert.pem",
        "key.pem",
    ];
    if !args.force
        && let Some(f) = files.iter().find(|f| args.out.join(f).exists())
    {
        anyhow::bail!(
            "{} already exists; use --force to replace the certificates",
            args.out.join(f).display()
        );
    }

    let mut ca = params("Berth CA", Vec::new(), args.days)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let mut server = params(&args.hosts[0], args.hosts.clone(), args.days)?;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;

    let mut client = params("client", Vec::new(), args.days)?;
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &ca)?;

    let write = |name: &str, text: String, mode: u32| -> anyhow::Result<()> {
        let path = args.out.join(name);
        berth_service::write_atomic(&path, text.as_bytes(), mode)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    write("ca.pem", ca.pem(), 0o444)?;
    write("ca-key.pem", ca_key_pem(&ca), 0o400)?;
    write("server-cert.pem", server_cert.pem(), 0o444)?;
    write("server-key.pem", server_key.serialize_pem(), 0o400)?;
    write("cert.pem", client_cert.pem(), 0o444)?;
    write("key.pem", client_key.serialize_pem(), 0o400)?;
    println!("Wrote {} to {}", files.join(", "), args.out.display());
    println!(
        "Server: \"tlsverify\": true, \"tlscacert\": \"{0}/ca.pem\", \"tlscert\": \"{0}/server-cert.pem\", \"tlskey\": \"{0}/server-key.pem\"",
        args.out.display()
    );
    println!(
        "Client: docker --tlsverify --tlscacert={0}/ca.pem --tlscert={0}/cert.pem --tlskey={0}/key.pem -H tcp://{1}:2376 version",
        args.out.display(),
        args.hosts[0]
    );
    Ok(())
}

fn ca_key_pem(ca: &CertifiedIssuer<'_, KeyPair>) -> String {
    ca.key().serialize_pem()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_six_files_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let args = CertsArgs {
            out: dir.path().join("certs"),
            hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            days: 30,
            force: false,
        };
        run(&args).unwrap();
        for f in [
            "ca.pem",
            "ca-key.pem",
            "server-cert.pem",
            "server-key.pem",
            "cert.pem",
            "key.pem",
        ] {
            let text = std::fs::read_to_string(args.out.join(f)).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{f}");
        }
        let mode = std::fs::metadata(args.out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        assert!(run(&args).unwrap_err().to_string().contains("--force"));
        run(&CertsArgs {
            force: true,
            ..args
        })
        .unwrap();
    }
}
