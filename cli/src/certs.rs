//! `berth certs`: the CA, server and client certificates that Docker's "protect the daemon
//! socket" guide makes with openssl, made with rcgen instead, and the certificates services use
//! between themselves over TCP (`berth.tls`). File names follow that guide: `ca.pem`,
//! `server-cert.pem`, `server-key.pem`, `cert.pem`, `key.pem` (the client's), so
//! `docker --tlsverify` finds them in `~/.docker` or `DOCKER_CERT_PATH`; the services' shared
//! certificate is `service-cert.pem`/`service-key.pem`, one service's `<NAME>-cert.pem`.
//!
//! A service certificate is used both ways: a service serves with it and calls other services
//! with it, so it carries extendedKeyUsage serverAuth and clientAuth, and names (as SANs) the
//! hosts it is reached by.

use std::{os::unix::fs::PermissionsExt, path::PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory to write the files into (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A DNS name or IP address the API server is reached by (repeat for several). With
    /// --service: the names of that service's host.
    #[arg(long = "host", value_name = "NAME", required = true)]
    pub hosts: Vec<String>,
    /// A DNS name or IP address services are reached by (the hosts of `berth.services.*.address`),
    /// named in the shared service certificate (repeat); default: the --host names.
    #[arg(long = "service-host", value_name = "NAME", conflicts_with = "service")]
    pub service_hosts: Vec<String>,
    /// Make only the certificate of one service (or of one host's services),
    /// `<NAME>-cert.pem` and `<NAME>-key.pem`, signed by the CA already in --out and naming the
    /// --host names.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
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

/// A certificate and its key, in PEM.
struct Pair {
    cert: String,
    key: String,
}

/// A leaf certificate for `usages`, signed by `ca`.
fn leaf(
    cn: &str,
    sans: &[String],
    usages: &[ExtendedKeyUsagePurpose],
    days: i64,
    ca: &Issuer<'_, KeyPair>,
) -> anyhow::Result<Pair> {
    let mut p = params(cn, sans.to_vec(), days)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if usages.contains(&ExtendedKeyUsagePurpose::ServerAuth) {
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    p.extended_key_usages = usages.to_vec();
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, ca)?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Both ways: a service serves with its certificate and calls other services with it.
const SERVICE_USAGES: [ExtendedKeyUsagePurpose; 2] = [
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];

pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.days > 0, "--days must be positive");
    std::fs::create_dir_all(&args.out)?;
    match &args.service {
        Some(name) => one_service(args, name),
        None => everything(args),
    }
}

fn refuse_to_overwrite(args: &CertsArgs, files: &[&str]) -> anyhow::Result<()> {
    if !args.force
        && let Some(f) = files.iter().find(|f| args.out.join(f).exists())
    {
        anyhow::bail!(
            "{} already exists; use --force to replace the certificates",
            args.out.join(f).display()
        );
    }
    Ok(())
}

fn write(args: &CertsArgs, name: &str, text: &str, mode: u32) -> anyhow::Result<()> {
    let path = args.out.join(name);
    berth_service::write_atomic(&path, text.as_bytes(), mode)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn everything(args: &CertsArgs) -> anyhow::Result<()> {
    let files = [
        "ca.pem",
        "ca-key.pem",
        "server-cert.pem",
        "server-key.pem",
        "cert.pem",
        "key.pem",
        "service-cert.pem",
        "service-key.pem",
    ];
    refuse_to_overwrite(args, &files)?;

    // A name of its own: webpki finds an issuer by name, so two CAs both called "Berth CA"
    // would make a stranger's certificate fail as a bad signature, not as an unknown CA.
    let ca_name = format!(
        "Berth CA {}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut ca = params(&ca_name, Vec::new(), args.days)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let server = leaf(
        &args.hosts[0],
        &args.hosts,
        &[ExtendedKeyUsagePurpose::ServerAuth],
        args.days,
        &ca,
    )?;
    let client = leaf(
        "client",
        &[],
        &[ExtendedKeyUsagePurpose::ClientAuth],
        args.days,
        &ca,
    )?;
    let service_hosts = if args.service_hosts.is_empty() {
        &args.hosts
    } else {
        &args.service_hosts
    };
    let service = leaf(
        "berth-service",
        service_hosts,
        &SERVICE_USAGES,
        args.days,
        &ca,
    )?;

    write(args, "ca.pem", &ca.pem(), 0o444)?;
    write(args, "ca-key.pem", &ca.key().serialize_pem(), 0o400)?;
    write(args, "server-cert.pem", &server.cert, 0o444)?;
    write(args, "server-key.pem", &server.key, 0o400)?;
    write(args, "cert.pem", &client.cert, 0o444)?;
    write(args, "key.pem", &client.key, 0o400)?;
    write(args, "service-cert.pem", &service.cert, 0o444)?;
    write(args, "service-key.pem", &service.key, 0o400)?;
    let dir = args.out.display();
    println!("Wrote {} to {dir}", files.join(", "));
    println!(
        "Server: \"tlsverify\": true, \"tlscacert\": \"{dir}/ca.pem\", \"tlscert\": \"{dir}/server-cert.pem\", \"tlskey\": \"{dir}/server-key.pem\""
    );
    println!(
        "Client: docker --tlsverify --tlscacert={dir}/ca.pem --tlscert={dir}/cert.pem --tlskey={dir}/key.pem -H tcp://{}:2376 version",
        args.hosts[0]
    );
    println!(
        "Services (names {}): \"berth\": {{\"tls\": {{\"ca\": \"{dir}/ca.pem\", \"cert\": \"{dir}/service-cert.pem\", \"key\": \"{dir}/service-key.pem\"}}}}",
        service_hosts.join(", ")
    );
    Ok(())
}

/// `--service NAME`: one service certificate signed by the CA already in the directory.
fn one_service(args: &CertsArgs, name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    anyhow::ensure!(
        valid,
        "--service {name:?}: want a name of letters, digits, '-', '_' and '.' (it names the files)"
    );
    let (cert_file, key_file) = (format!("{name}-cert.pem"), format!("{name}-key.pem"));
    refuse_to_overwrite(args, &[&cert_file, &key_file])?;
    let read = |f: &str| {
        let path = args.out.join(f);
        std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}; make the CA first with `berth certs --out {}`",
                path.display(),
                args.out.display()
            )
        })
    };
    let ca_key = KeyPair::from_pem(&read("ca-key.pem")?)
        .map_err(|e| anyhow::anyhow!("ca-key.pem is not a private key: {e}"))?;
    let ca = Issuer::from_ca_cert_pem(&read("ca.pem")?, ca_key)
        .map_err(|e| anyhow::anyhow!("ca.pem is not a CA certificate: {e}"))?;
    let pair = leaf(name, &args.hosts, &SERVICE_USAGES, args.days, &ca)?;
    write(args, &cert_file, &pair.cert, 0o444)?;
    write(args, &key_file, &pair.key, 0o400)?;
    let dir = args.out.display();
    println!(
        "Wrote {cert_file}, {key_file} to {dir} (names {})",
        args.hosts.join(", ")
    );
    println!(
        "On that host: \"berth\": {{\"tls\": {{\"ca\": \"{dir}/ca.pem\", \"cert\": \"{dir}/{cert_file}\", \"key\": \"{dir}/{key_file}\"}}}}"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
