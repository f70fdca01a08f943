//! The local driver's options (`type`, `device`, `o`, `size`), checked as moby's
//! `volume/local` checks them, and turned into one mount(2) call of the volume's own
//! filesystem at its data path (moby/sys/mount's option parsing: flags out of `o`, the rest as
//! the filesystem's data).

use std::{collections::BTreeMap, path::Path};

use nix::mount::MsFlags;

/// The option keys the local driver knows.
const VALID: &[&str] = &["type", "o", "device", "size"];
/// An option and those it needs (checked in this order).
const MANDATORY: &[(&str, &[&str])] = &[
    ("device", &["type"]),
    ("type", &["device"]),
    ("o", &["device", "type"]),
];

/// Checks a volume's options; the message is the local driver's (without the `create <name>:`
/// the store puts before it).
pub(crate) fn validate(opts: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(k) = opts.keys().find(|k| !VALID.contains(&k.as_str())) {
        return Err(format!("invalid option: {k:?}"));
    }
    if let (Some("cifs"), Some(device)) = (
        opts.get("type").map(String::as_str),
        opts.get("device").filter(|d| !d.is_empty()),
    ) && url_port(device).is_some()
    {
        return Err("port not allowed in CIFS device URL, include 'port' in 'o='".to_owned());
    }
    if let Some(size) = opts.get("size")
        && parse_size(size).ok_or_else(|| format!("invalid size: '{size}'"))? > 0
    {
        // Quotas need a project-quota filesystem under the volumes' root; Berth has none.
        return Err("quota size requested but no quota support".to_owned());
    }
    for (opt, needs) in MANDATORY {
        if opts.contains_key(*opt)
            && let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n))
        {
            return Err(format!("missing required option: {missing:?}"));
        }
    }
    Ok(())
}

/// The port of a URL-like device (`//host:445/share`, `smb://host:445/x`).
fn url_port(device: &str) -> Option<&str> {
    let rest = device.split_once("://").map_or(device, |(_, r)| r);
    let rest = rest.trim_start_matches('/');
    let host = rest.split('/').next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let port = match host.strip_prefix('[') {
        Some(v6) => v6.split_once("]:")?.1,
        None => host.rsplit_once(':')?.1,
    };
    (!port.is_empty()).then_some(port)
}

/// go-units `RAMInBytes`: `10`, `10k`, `1.5MiB`, `2g` in powers of 1024.
fn parse_size(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let t = lower.strip_suffix('b').unwrap_or(&lower);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult) = match t.chars().last()? {
        c @ ('k' | 'm' | 'g' | 't' | 'p') => {
            let exp = "kmgtp".find(c)? as u32 + 1;
            (&t[..t.len() - 1], 1024u64.checked_pow(exp)?)
        }
        _ => (t, 1),
    };
    let num = num.trim_end_matches(' ');
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    Some((n * mult as f64) as u64)
}

/// Whether a volume with these options has a filesystem of its own to mount.
pub(crate) fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    ["type", "device"]
        .iter()
        .any(|k| opts.get(*k).is_some_and(|v| !v.is_empty()))
}

/// moby/sys/mount's flag table: a flag set, or cleared, by an option word.
fn flag(word: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    let set = |f| Some((false, f));
    let clear = |f| Some((true, f));
    match word {
        "ro" => set(F::MS_RDONLY),
        "rw" => clear(F::MS_RDONLY),
        "suid" => clear(F::MS_NOSUID),
        "nosuid" => set(F::MS_NOSUID),
        "dev" => clear(F::MS_NODEV),
        "nodev" => set(F::MS_NODEV),
        "exec" => clear(F::MS_NOEXEC),
        "noexec" => set(F::MS_NOEXEC),
        "sync" => set(F::MS_SYNCHRONOUS),
        "async" => clear(F::MS_SYNCHRONOUS),
        "dirsync" => set(F::MS_DIRSYNC),
        "remount" => set(F::MS_REMOUNT),
        "mand" => set(F::MS_MANDLOCK),
        "nomand" => clear(F::MS_MANDLOCK),
        "atime" => clear(F::MS_NOATIME),
        "noatime" => set(F::MS_NOATIME),
        "diratime" => clear(F::MS_NODIRATIME),
        "nodiratime" => set(F::MS_NODIRATIME),
        "bind" => set(F::MS_BIND),
        "rbind" => set(F::MS_BIND | F::MS_REC),
        "unbindable" => set(F::MS_UNBINDABLE),
        "runbindable" => set(F::MS_UNBINDABLE | F::MS_REC),
        "private" => set(F::MS_PRIVATE),
        "rprivate" => set(F::MS_PRIVATE | F::MS_REC),
        "shared" => set(F::MS_SHARED),
        "rshared" => set(F::MS_SHARED | F::MS_REC),
        "slave" => set(F::MS_SLAVE),
        "rslave" => set(F::MS_SLAVE | F::MS_REC),
        "relatime" => set(F::MS_RELATIME),
        "norelatime" => clear(F::MS_RELATIME),
        "strictatime" => set(F::MS_STRICTATIME),
        "nostrictatime" => clear(F::MS_STRICTATIME),
        _ => None,
    }
}

/// `o` split into mount flags and the filesystem's data (the words that are not flags).
pub(crate) fn parse_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for word in o.split(',') {
        match flag(word) {
            Some((true, f)) => flags.remove(f),
            Some((false, f)) => flags.insert(f),
            None => data.push(word),
        }
    }
    (flags, data.join(","))
}

/// The `password=` value of `o`, if any.
fn password(o: &str) -> Option<&str> {
    o.split(',').find_map(|w| w.strip_prefix("password="))
}

/// `text` with the password of `o` masked, as dockerd masks it in a failed mount's error.
pub(crate) fn mask(text: &str, o: &str) -> String {
    match password(o) {
        Some(p) if !p.is_empty() => text.replace(&format!("password={p}"), "password=********"),
        _ => text.to_owned(),
    }
}

/// Go's text for an errno (`no such file or directory`).
fn errno_text(e: nix::Error) -> String {
    let d = e.desc();
    let mut c = d.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// `addr=<host>` of an nfs or cifs mount resolved to an IP, as dockerd does before mounting.
fn resolve_addr(kind: &str, o: &str) -> Result<String, String> {
    if !matches!(kind, "nfs" | "cifs") {
        return Ok(o.to_owned());
    }
    let Some(addr) = o.split(',').find_map(|w| w.strip_prefix("addr=")) else {
        return Ok(o.to_owned());
    };
    if addr.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(o.to_owned());
    }
    use std::net::ToSocketAddrs;
    let ip = (addr, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
        .ok_or_else(|| {
            format!("error resolving passed in network volume address: lookup {addr}: no such host")
        })?;
    Ok(o.replacen(&format!("addr={addr}"), &format!("addr={ip}"), 1))
}

/// Mounts the volume's filesystem at `target` as moby's local driver does; the error is
/// dockerd's (`failed to mount local volume: mount <dev>:<target>, flags: 0x.., data: ..:
/// <errno>`), a password masked.
pub(crate) fn mount(opts: &BTreeMap<String, String>, target: &Path) -> Result<(), String> {
    let get = |k: &str| opts.get(k).map(String::as_str).unwrap_or_default();
    let (kind, device, o) = (get("type"), get("device"), get("o"));
    if device.is_empty() {
        return Err("missing device in volume options".to_owned());
    }
    let o_resolved = resolve_addr(kind, o)?;
    let (flags, data) = parse_options(&o_resolved);
    mount_flags(device, target, kind, flags, &data)
        .map_err(|e| mask(&format!("failed to mount local volume: {e}"), o))
}

/// moby/sys/mount's `mount`: the mount without propagation flags, then the propagation
/// change, then a read-only remount of a read-only bind.
fn mount_flags(
    device: &str,
    target: &Path,
    kind: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), String> {
    use MsFlags as F;
    let ptypes = F::MS_SHARED | F::MS_PRIVATE | F::MS_SLAVE | F::MS_UNBINDABLE;
    let oflags = flags - ptypes;
    let t = target.display();
    let with = |s: String, f: MsFlags, data: &str| {
        let mut s = s;
        if !f.is_empty() {
            s.push_str(&format!(", flags: 0x{:x}", f.bits()));
        }
        if !data.is_empty() {
            s.push_str(&format!(", data: {data}"));
        }
        s
    };
    let remount = flags.contains(F::MS_REMOUNT) || device.is_empty() || device == "none";
    if !remount || !data.is_empty() {
        let d = (!data.is_empty()).then_some(data);
        let k = (!kind.is_empty()).then_some(kind);
        nix::mount::mount(Some(device), target, k, oflags, d).map_err(|e| {
            format!(
                "{}: {}",
                with(format!("mount {device}:{t}"), oflags, data),
                errno_text(e)
            )
        })?;
    }
    if flags.intersects(ptypes) {
        let pf = flags & (ptypes | F::MS_REC | F::MS_SILENT);
        nix::mount::mount(None::<&str>, target, None::<&str>, pf, None::<&str>).map_err(|e| {
            format!(
                "{}: {}",
                with(format!("remount {t}"), pf, ""),
                errno_text(e)
            )
        })?;
    }
    if oflags.contains(F::MS_BIND | F::MS_RDONLY) {
        let rf = oflags | F::MS_REMOUNT;
        nix::mount::mount(None::<&str>, target, None::<&str>, rf, None::<&str>).map_err(|e| {
            format!(
                "{}: {}",
                with(format!("remount-ro {t}"), rf, ""),
                errno_text(e)
            )
        })?;
    }
    Ok(())
}

/// Unmounts what is mounted at `target` (lazily, as moby); nothing mounted is no error.
pub(crate) fn unmount(target: &Path) -> Result<(), String> {
    match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) if !is_mounted(target) => {
            tracing::debug!(error = %e, "unmount of a path not mounted");
            Ok(())
        }
        Err(e) => Err(format!("unmount {}: {}", target.display(), errno_text(e))),
    }
}

/// Whether `path` is a mount point in this mount namespace.
pub(crate) fn is_mounted(path: &Path) -> bool {
    let want = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|p| unescape(p) == want)
        })
        .unwrap_or(false)
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
