//! The cgroup hierarchies mounted on this host, from /proc/self/mountinfo.

use std::path::PathBuf;

/// One mounted hierarchy: its mount point, whether it is the v2 one, and (v1) its mount
/// options, which name its controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mounted {
    pub(crate) mount_point: PathBuf,
    pub(crate) v2: bool,
    pub(crate) options: Vec<String>,
}

/// The cgroup hierarchies mounted in `mountinfo` (the text of /proc/self/mountinfo), the v2
/// one first. Bind mounts of a subtree and second mounts of a hierarchy are skipped.
pub(crate) fn hierarchies(mountinfo: &str) -> Vec<Mounted> {
    let mut out: Vec<Mounted> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || pre[3] != "/" {
            continue;
        }
        let v2 = match post[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let options: Vec<String> = post[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro"))
            .map(str::to_owned)
            .collect();
        if out.iter().any(|m| m.v2 == v2 && m.options == options) {
            continue;
        }
        out.push(Mounted {
            mount_point: PathBuf::from(unescape(pre[4])),
            v2,
            options,
        });
    }
    out.sort_by_key(|m| !m.v2);
    out
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(oct) = s.get(i + 1..i + 4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
