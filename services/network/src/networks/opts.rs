//! An endpoint's `--link-local-ip` addresses and `--driver-opt` options, checked as dockerd
//! checks them and turned into what the container's interface gets. The bridge driver honors
//! `com.docker.network.endpoint.sysctls` (interface sysctls, `net.X.Y.IFNAME.Z=V`) and
//! `com.docker.network.endpoint.ifname` (the interface's name); other keys are refused.

use std::net::IpAddr;

use berth_proto::network::v1 as pb;

use crate::NetworkError;

pub(crate) const SYSCTLS: &str = "com.docker.network.endpoint.sysctls";
pub(crate) const IFNAME: &str = "com.docker.network.endpoint.ifname";

/// A link's name the kernel takes.
pub(crate) fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && !n
            .bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace())
}

/// The link-local addresses asked for, with dockerd's prefix lengths (/16 and /64).
pub(crate) fn link_local(want: &pb::EndpointRequest) -> Result<Vec<(IpAddr, u8)>, NetworkError> {
    want.link_local_ips
        .iter()
        .map(|s| {
            let ip: IpAddr = s
                .parse()
                .ok()
                .filter(|ip: &IpAddr| !ip.is_unspecified())
                .ok_or_else(|| {
                    NetworkError::invalid(format!("invalid link-local IP address: {s}"))
                })?;
            let link_local = match ip {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => v6.is_unicast_link_local(),
            };
            if !link_local {
                return Err(NetworkError::invalid(format!(
                    "invalid link local IP address: {ip}"
                )));
            }
            Ok((ip, if ip.is_ipv4() { 16 } else { 64 }))
        })
        .collect()
}

/// The driver options checked: the keys the bridge driver honors, the sysctls in dockerd's
/// form, the interface name.
pub(crate) fn check(want: &pb::EndpointRequest) -> Result<(), NetworkError> {
    let mut keys: Vec<&String> = want.driver_opts.keys().collect();
    keys.sort();
    if let Some(k) = keys
        .iter()
        .find(|k| !matches!(k.as_str(), SYSCTLS | IFNAME))
    {
        return Err(NetworkError::invalid(format!(
            "--driver-opt {k} is not supported by Berth (EndpointSettings.DriverOpts)"
        )));
    }
    if let Some(name) = want.driver_opts.get(IFNAME)
        && !valid_ifname(name)
    {
        return Err(NetworkError::invalid(format!(
            "invalid interface name {name:?} ({IFNAME})"
        )));
    }
    let errs: Vec<String> = want
        .driver_opts
        .get(SYSCTLS)
        .map(|s| s.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            let p: Vec<&str> = s.splitn(5, '.').collect();
            p.len() != 5
                || !matches!(p[1], "ipv4" | "ipv6" | "mpls")
                || !matches!(p[3], "IFNAME" | "ifname")
        })
        .map(|s| {
            format!(
                "unrecognised network interface sysctl '{s}'; represent 'net.X.Y.ethN.Z=V' as \
                 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
            )
        })
        .collect();
    if !errs.is_empty() {
        return Err(NetworkError::invalid(format!(
            "invalid endpoint settings:\n{}",
            errs.join("\n")
        )));
    }
    Ok(())
}

/// The interface sysctls for `interface`: the file under /proc/sys and the value, as dockerd
/// sets them.
pub(crate) fn sysctls(
    want: &pb::EndpointRequest,
    interface: &str,
) -> Result<Vec<(String, String)>, NetworkError> {
    let Some(list) = want.driver_opts.get(SYSCTLS) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|sc| {
            let (k, v) = sc.split_once('=').ok_or_else(|| {
                NetworkError::invalid(format!("expected sysctl '{sc}' to have format name=value"))
            })?;
            let p: Vec<&str> = k.split('.').collect();
            if p.len() != 5 {
                return Err(NetworkError::invalid(format!(
                    "expected sysctl '{sc}' to have format net.X.Y.IFNAME.Z"
                )));
            }
            Ok((
                format!("/proc/sys/{}/{}/{}/{interface}/{}", p[0], p[1], p[2], p[4]),
                v.to_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(opts: &[(&str, &str)], ll: &[&str]) -> pb::EndpointRequest {
        pb::EndpointRequest {
            driver_opts: opts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            link_local_ips: ll.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn link_local_addresses_as_dockerd_takes_them() {
        let w = want(&[], &["169.254.7.8", "fe80::7"]);
        assert_eq!(
            link_local(&w).unwrap(),
            [
                ("169.254.7.8".parse().unwrap(), 16),
                ("fe80::7".parse().unwrap(), 64)
            ]
        );
        let err = |s: &str| link_local(&want(&[], &[s])).unwrap_err().to_string();
        assert_eq!(err("x"), "invalid link-local IP address: x");
        assert_eq!(err("0.0.0.0"), "invalid link-local IP address: 0.0.0.0");
        assert_eq!(err("10.0.0.1"), "invalid link local IP address: 10.0.0.1");
    }

    #[test]
    fn driver_options_are_honored_or_refused() {
        assert!(check(&want(&[], &[])).is_ok());
        let ok = want(
            &[
                (
                    SYSCTLS,
                    "net.ipv4.conf.IFNAME.forwarding=1,net.ipv6.conf.ifname.mtu=1400",
                ),
                (IFNAME, "foo0"),
            ],
            &[],
        );
        check(&ok).unwrap();
        assert_eq!(
            sysctls(&ok, "foo0").unwrap(),
            [
                (
                    "/proc/sys/net/ipv4/conf/foo0/forwarding".to_owned(),
                    "1".to_owned()
                ),
                (
                    "/proc/sys/net/ipv6/conf/foo0/mtu".to_owned(),
                    "1400".to_owned()
                )
            ]
        );
        let err = |o: &[(&str, &str)]| check(&want(o, &[])).unwrap_err().to_string();
        assert!(err(&[("com.docker.network.endpoint.x", "1")]).contains("--driver-opt"));
        assert!(err(&[(IFNAME, "a/b")]).contains("invalid interface name"));
        assert_eq!(
            err(&[(SYSCTLS, "net.ipv4.conf.eth0.forwarding=1")]),
            "invalid endpoint settings:\nunrecognised network interface sysctl \
             'net.ipv4.conf.eth0.forwarding=1'; represent 'net.X.Y.ethN.Z=V' as \
             'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
        );
        let bad = want(&[(SYSCTLS, "net.ipv4.conf.IFNAME.forwarding")], &[]);
        assert!(
            sysctls(&bad, "eth0")
                .unwrap_err()
                .to_string()
                .contains("to have format name=value")
        );
    }
}
