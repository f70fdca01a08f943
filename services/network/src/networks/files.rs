//! The container's /etc/resolv.conf and /etc/hosts as dockerd writes them.

/// The host's resolv.conf for a container on a bridge: loopback name servers cannot be reached
/// from its netns, so they are dropped; with none left, Docker's defaults (8.8.8.8, 8.8.4.4).
pub(crate) fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let ip = words.next().unwrap_or_default();
            let loopback = ip
                .parse::<std::net::IpAddr>()
                .map_or(true, |a| a.is_loopback());
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// /etc/hosts as dockerd writes it, with the container's addresses.
pub(crate) fn hosts(hostname: &str, domainname: &str, addresses: &[String]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    let names = if domainname.is_empty() {
        hostname.to_owned()
    } else {
        format!("{hostname}.{domainname} {hostname}")
    };
    for a in addresses {
        out.push_str(&format!("{a}\t{names}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "nameserver 127.0.0.53\nsearch example.org\noptions ndots:2\n";
        assert_eq!(
            resolv_conf(host),
            "search example.org\noptions ndots:2\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf("nameserver 10.0.0.2\nnameserver ::1\n"),
            "nameserver 10.0.0.2\n"
        );
    }

    #[test]
    fn hosts_name_the_container() {
        let h = hosts("abc", "", &["172.18.0.2".to_owned()]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.18.0.2\tabc\n"));
        let h = hosts("web", "example.org", &["10.0.0.3".to_owned()]);
        assert!(h.ends_with("10.0.0.3\tweb.example.org web\n"));
    }
}
