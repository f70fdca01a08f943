//! The user a process runs as: Docker's `-u` value (`user`, `uid`, `user:group`,
//! `uid:gid`, ...), resolved by the shim inside the container's root filesystem against its
//! /etc/passwd and /etc/group, as runc does.

use berth_shim_proto::v1 as shimpb;

/// The shim's user for Docker's `user[:group]` (empty means root) with the container's
/// `--group-add` groups.
pub(crate) fn process_user(user: &str, groups: &[String]) -> shimpb::User {
    shimpb::User {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        name: user.trim().to_owned(),
        additional_groups: groups.to_vec(),
    }
}
