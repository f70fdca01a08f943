//! Docker's `-u user[:group]`, resolved the way runc's `libcontainer/user` (`GetExecUser`)
//! does, against the container's own /etc/passwd and /etc/group. The child reads them after
//! pivot_root (an exec: after joining the container's mount namespace), so the plain paths
//! are the container's files.
//!
//! - user: a number is the uid as is (its passwd entry, if any, gives the primary gid and the
//!   home); a name must be in passwd.
//! - group: a number is the gid as is; a name must be in /etc/group.
//! - supplementary groups, only without an explicit group (runc's "implicit form"): every
//!   group listing the user's name.
//!
//! The groups set with setgroups(2) are the primary gid, those, then the config's
//! `additional_gids` (moby's `getUser`).

use std::{fs::File, io::Read, os::unix::fs::OpenOptionsExt, path::Path};

use crate::{config::User, error::StartError};

pub(crate) const PASSWD: &str = "/etc/passwd";
pub(crate) const GROUP: &str = "/etc/group";
/// Larger passwd or group files are refused.
pub(crate) const MAX_DB_SIZE: u64 = 1 << 20;
/// runc's range for ids given as numbers (`minID`..`maxID`).
const MAX_ID: i64 = i32::MAX as i64;
const RANGE_ERROR: &str = "uids and gids must be in range 0-2147483647";

/// One line of /etc/passwd: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswdEntry {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: String,
}

/// One line of /etc/group: `name:password:gid:member,member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupEntry {
    pub(crate) name: String,
    pub(crate) gid: u32,
    pub(crate) members: Vec<String>,
}

/// What the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// For setgroups(2).
    pub(crate) groups: Vec<u32>,
    /// For HOME when the environment has none.
    pub(crate) home: String,
}

/// The entries of a passwd file; lines without a name or with a non-numeric uid or gid are
/// skipped, as are blank and `#` lines.
pub(crate) fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first().filter(|n| !n.is_empty())?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The entries of a group file (same rules as [`parse_passwd`]).
pub(crate) fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first().filter(|n| !n.is_empty())?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|l| l.split(',').map(str::trim).filter(|m| !m.is_empty()))
                    .into_iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

enum Id<'a> {
    Num(u32),
    Name(&'a str),
}

/// A number (as Go's Atoi reads it) must be in runc's range; anything else is a name.
fn id(part: &str) -> Result<Id<'_>, String> {
    match part.parse::<i64>() {
        Ok(n) if (0..=MAX_ID).contains(&n) => Ok(Id::Num(n as u32)),
        Ok(_) => Err(RANGE_ERROR.to_owned()),
        Err(_) => Ok(Id::Name(part)),
    }
}

/// Resolves `spec` (`user`, `user:group`, `uid:gid`, ...) against the files' entries (none
/// when a file does not exist). `additional` are the config's gids, kept after the others.
pub(crate) fn resolve<'a>(
    spec: &str,
    passwd: &'a [PasswdEntry],
    group: &[GroupEntry],
    additional: &[u32],
) -> Result<ExecUser, String> {
    let mut parts = spec.split(':');
    let user_part = parts.next().unwrap_or_default();
    let group_part = parts.next().filter(|g| !g.is_empty());
    // An empty user part is root, as runc's default user.
    let user_id = if user_part.is_empty() {
        Id::Num(0)
    } else {
        id(user_part)?
    };
    let found = |e: &'a PasswdEntry| (e.uid, e.gid, e.home.as_str(), Some(e.name.as_str()));
    let (uid, mut gid, home, name) = match user_id {
        Id::Num(uid) => passwd
            .iter()
            .find(|e| e.uid == uid)
            .map_or((uid, 0, "/", None), found),
        Id::Name(n) => passwd
            .iter()
            .find(|e| e.name == n)
            .map(found)
            .ok_or_else(|| {
                format!("unable to find user {n}: no matching entries in passwd file")
            })?,
    };
    let mut groups = Vec::new();
    match group_part {
        Some(g) => gid = group_id(g, group)?,
        None => {
            if let Some(name) = name {
                groups.extend(
                    group
                        .iter()
                        .filter(|g| g.members.iter().any(|m| m == name))
                        .map(|g| g.gid),
                );
            }
        }
    }
    let mut all = vec![gid];
    for g in groups.into_iter().chain(additional.iter().copied()) {
        if !all.contains(&g) {
            all.push(g);
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        groups: all,
        home: if home.is_empty() { "/" } else { home }.to_owned(),
    })
}

/// Reads a passwd or group file: None when it does not exist. O_NONBLOCK, so that a FIFO in
/// the image cannot hang the start; only a regular file up to [`MAX_DB_SIZE`] is read.
pub(crate) fn read_db(path: &Path) -> Result<Option<String>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("reading {}: {e}", path.display());
    let f = match File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(nix::libc::ENOTDIR) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(fail(&e)),
    };
    if !f.metadata().map_err(|e| fail(&e))?.is_file() {
        return Err(fail(&"not a regular file"));
    }
    let mut buf = Vec::new();
    f.take(MAX_DB_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(&e))?;
    if buf.len() as u64 > MAX_DB_SIZE {
        return Err(fail(&format_args!("larger than {MAX_DB_SIZE} bytes")));
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The process's user, read from the container's files (the child calls this inside the
/// container's root). With an empty `name`, uid, gid and additional_gids are used as given,
/// and passwd only supplies the home, best effort.
pub(crate) fn for_process(user: &User) -> Result<ExecUser, StartError> {
    let mut u = base_user(user)?;
    if !user.additional_groups.is_empty() {
        let group = read_db(Path::new(GROUP)).map_err(StartError::other)?;
        let entries = parse_group(group.as_deref().unwrap_or_default());
        for g in extra_groups(&user.additional_groups, &entries).map_err(StartError::other)? {
            if !u.groups.contains(&g) {
                u.groups.push(g);
            }
        }
    }
    Ok(u)
}

/// Docker's `--group-add` values: numbers as they are, names looked up in `group` (moby's
/// GetAdditionalGroups).
pub(crate) fn extra_groups(values: &[String], group: &[GroupEntry]) -> Result<Vec<u32>, String> {
    values.iter().map(|v| group_id(v, group)).collect()
}

/// A group as `-u` and `--group-add` name it: a number as it is, a name looked up in `group`.
fn group_id(part: &str, group: &[GroupEntry]) -> Result<u32, String> {
    match id(part)? {
        Id::Num(n) => Ok(n),
        Id::Name(n) => group
            .iter()
            .find(|e| e.name == n)
            .map(|e| e.gid)
            .ok_or_else(|| format!("unable to find group {n}: no matching entries in group file")),
    }
}

/// The user without `--group-add`.
fn base_user(user: &User) -> Result<ExecUser, StartError> {
    if user.name.is_empty() {
        let home = read_db(Path::new(PASSWD))
            .ok()
            .flatten()
            .and_then(|t| parse_passwd(&t).into_iter().find(|e| e.uid == user.uid))
            .map(|e| e.home)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        return Ok(ExecUser {
            uid: user.uid,
            gid: user.gid,
            groups: user.additional_gids.clone(),
            home,
        });
    }
    let passwd = read_db(Path::new(PASSWD)).map_err(StartError::other)?;
    let group = read_db(Path::new(GROUP)).map_err(StartError::other)?;
    resolve(
        &user.name,
        &parse_passwd(passwd.as_deref().unwrap_or_default()),
        &parse_group(group.as_deref().unwrap_or_default()),
        &user.additional_gids,
    )
    .map_err(StartError::other)
}

/// `env` with HOME set to `home` when it has no HOME or an empty one (runc's setupUser).
pub(crate) fn with_home(env: &[String], home: &str) -> Vec<String> {
    let set = |e: &String| e.strip_prefix("HOME=").is_some_and(|v| !v.is_empty());
    if env.iter().any(set) {
        return env.to_vec();
    }
    let mut out: Vec<String> = env.iter().filter(|e| *e != "HOME=").cloned().collect();
    out.push(format!("HOME={home}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_FIXTURE: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
  # a comment

broken:x:abc:1::/:/bin/sh
:x:5:5::/:
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nohome:x:1001:1001
alice:x:2000:2000:second alice:/other:/bin/sh
";
    const GROUP_FIXTURE: &str = "\
root:x:0:
wheel:x:10:root,alice
users:x:100:bob, alice ,
staff:x:50:bob
bad:x:notanumber:alice
alice:x:1000:
nogroup:x:65534:
";

    fn run(spec: &str, additional: &[u32]) -> Result<ExecUser, String> {
        resolve(
            spec,
            &parse_passwd(PASSWD_FIXTURE),
            &parse_group(GROUP_FIXTURE),
            additional,
        )
    }

    fn user(uid: u32, gid: u32, groups: &[u32], home: &str) -> ExecUser {
        ExecUser {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.to_owned(),
        }
    }

    #[test]
    fn parses_and_skips_malformed_lines() {
        let p = parse_passwd(PASSWD_FIXTURE);
        let names: Vec<&str> = p.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["root", "daemon", "nobody", "alice", "nohome", "alice"]
        );
        assert_eq!(
            p[2],
            PasswdEntry {
                name: "nobody".into(),
                uid: 65534,
                gid: 65534,
                home: "/nonexistent".into()
            }
        );
        assert_eq!(p[4].home, "");
        let g = parse_group(GROUP_FIXTURE);
        assert_eq!(g.len(), 6, "{g:?}");
        assert_eq!(g[2].members, ["bob", "alice"]);
        assert!(g[0].members.is_empty());
    }

    #[test]
    fn names_are_looked_up() {
        assert_eq!(
            run("nobody", &[]).unwrap(),
            user(65534, 65534, &[65534], "/nonexistent")
        );
        // The first entry wins; supplementary groups are those listing the name.
        assert_eq!(
            run("alice", &[]).unwrap(),
            user(1000, 1000, &[1000, 10, 100], "/home/alice")
        );
        assert_eq!(run("root", &[]).unwrap(), user(0, 0, &[0, 10], "/root"));
        // The config's additional gids come last, without duplicates.
        assert_eq!(run("alice", &[5, 10]).unwrap().groups, [1000, 10, 100, 5]);
        assert_eq!(run("nohome", &[]).unwrap().home, "/");
    }

    #[test]
    fn group_add_names_and_numbers() {
        let group = parse_group("audio:x:29:\nstaff:x:50:\n");
        assert_eq!(
            extra_groups(&["audio".to_owned(), "1234".to_owned()], &group).unwrap(),
            [29, 1234]
        );
        assert_eq!(
            extra_groups(&["nope".to_owned()], &group).unwrap_err(),
            "unable to find group nope: no matching entries in group file"
        );
    }

    #[test]
    fn numbers_are_used_as_is() {
        assert_eq!(
            run("1234:5678", &[]).unwrap(),
            user(1234, 5678, &[5678], "/")
        );
        assert_eq!(run("1234", &[7]).unwrap(), user(1234, 0, &[0, 7], "/"));
        // A uid in passwd takes its entry's gid, home and groups, as runc does.
        assert_eq!(
            run("1000", &[]).unwrap(),
            user(1000, 1000, &[1000, 10, 100], "/home/alice")
        );
        assert_eq!(run("-1", &[]).unwrap_err(), RANGE_ERROR);
        assert_eq!(run("1:2147483648", &[]).unwrap_err(), RANGE_ERROR);
    }

    #[test]
    fn explicit_group_replaces_the_primary_and_drops_membership() {
        assert_eq!(
            run("alice:users", &[]).unwrap(),
            user(1000, 100, &[100], "/home/alice")
        );
        assert_eq!(run("alice:7", &[50]).unwrap().groups, [7, 50]);
        assert_eq!(run("1234:staff", &[]).unwrap(), user(1234, 50, &[50], "/"));
        assert_eq!(run(":users", &[]).unwrap(), user(0, 100, &[100], "/root"));
        assert_eq!(run("daemon:", &[]).unwrap().gid, 1);
    }

    #[test]
    fn unknown_names_fail_with_runcs_messages() {
        assert_eq!(
            run("bob", &[]).unwrap_err(),
            "unable to find user bob: no matching entries in passwd file"
        );
        assert_eq!(
            run("alice:nope", &[]).unwrap_err(),
            "unable to find group nope: no matching entries in group file"
        );
        // Without the files, numbers still work and names do not.
        assert_eq!(
            resolve("5:6", &[], &[], &[]).unwrap(),
            user(5, 6, &[6], "/")
        );
        assert_eq!(
            resolve("nobody", &[], &[], &[]).unwrap_err(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("5:users", &[], &[], &[]).unwrap_err(),
            "unable to find group users: no matching entries in group file"
        );
    }

    #[test]
    fn home_is_set_only_when_missing() {
        let env = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            with_home(&env(&["PATH=/bin"]), "/root"),
            env(&["PATH=/bin", "HOME=/root"])
        );
        assert_eq!(
            with_home(&env(&["HOME=/x", "A=1"]), "/root"),
            env(&["HOME=/x", "A=1"])
        );
        assert_eq!(
            with_home(&env(&["HOME=", "A=1"]), "/"),
            env(&["A=1", "HOME=/"])
        );
    }

    #[test]
    fn read_db_refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(read_db(&p.join("missing")).unwrap(), None);
        assert_eq!(read_db(&p.join("missing/passwd")).unwrap(), None);
        std::fs::write(p.join("passwd"), PASSWD_FIXTURE).unwrap();
        assert_eq!(
            read_db(&p.join("passwd")).unwrap().as_deref(),
            Some(PASSWD_FIXTURE)
        );
        std::fs::write(p.join("file"), "x").unwrap();
        assert_eq!(read_db(&p.join("file/passwd")).unwrap(), None);
        let big = vec![b'#'; MAX_DB_SIZE as usize + 1];
        std::fs::write(p.join("big"), big).unwrap();
        assert!(read_db(&p.join("big")).unwrap_err().contains("larger than"));
        nix::unistd::mkfifo(&p.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(
            read_db(&p.join("fifo"))
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(read_db(p).unwrap_err().contains("not a regular file"));
    }
}
