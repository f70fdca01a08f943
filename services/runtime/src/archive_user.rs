//! docker cp -a: the container's `User` (`user[:group]`, names or numbers) resolved to the uid
//! and gid the copied files get, from the container's /etc/passwd and /etc/group, as moby's
//! `getUIDGID`. Runs inside a filesystem view, where those paths are the container's.

/// The fields of the line of `file` whose `key_field` is `key`.
fn find_line(file: &str, key: &str, key_field: usize) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let fields: Vec<String> = l.split(':').map(str::to_owned).collect();
        (fields.len() > 3 && fields[key_field] == key).then_some(fields)
    })
}

fn number(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| *n <= i32::MAX as u32)
}

/// The uid and gid of `user` (`user[:group]`); an empty part is root.
pub(crate) fn lookup(user: &str) -> Result<(u32, u32), String> {
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    let (mut uid, mut gid) = (0, 0);
    if !name.is_empty() {
        match number(name) {
            Some(id) => {
                uid = id;
                // Best effort, as docker run: the user's primary group when it is known.
                if let Some(f) = find_line("/etc/passwd", &id.to_string(), 2) {
                    gid = f[3].parse().unwrap_or(0);
                }
            }
            None => {
                let f = find_line("/etc/passwd", name, 0).ok_or_else(|| {
                    format!(
                        "failed to look up user {name:?} in container: no matching entries in passwd file"
                    )
                })?;
                uid = f[2].parse().unwrap_or(0);
                gid = f[3].parse().unwrap_or(0);
            }
        }
    }
    if !group.is_empty() {
        gid = match number(group) {
            Some(id) => id,
            None => find_line("/etc/group", group, 0)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!(
                        "failed to look up group {group:?} in container: no matching entries in group file"
                    )
                })?,
        };
    }
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_need_no_files() {
        assert_eq!(lookup("123:456"), Ok((123, 456)));
        assert_eq!(lookup(":33"), Ok((0, 33)));
        assert!(
            lookup("nosuchuser-berth")
                .unwrap_err()
                .contains("failed to look up user")
        );
    }
}
