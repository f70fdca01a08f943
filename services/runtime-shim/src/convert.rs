//! Conversions between the proto messages and the shim's domain types.

use berth_shim_proto::v1 as pb;

use crate::{
    config::{Process, User},
    error::StartError,
    exit::ExitStatus,
    shim::ProcStatus,
    stdio::StreamKind,
};

pub(crate) fn exit(e: &ExitStatus) -> pb::ExitStatus {
    pb::ExitStatus {
        exit_code: e.exit_code,
        signal: e.signal.unwrap_or(0),
        exited_at: e.exited_at.clone(),
        oom_killed: e.oom_killed,
    }
}

/// The proto status and, once stopped, the exit.
pub(crate) fn status(s: &ProcStatus) -> (pb::Status, Option<pb::ExitStatus>) {
    match s {
        ProcStatus::Created => (pb::Status::Created, None),
        ProcStatus::Running => (pb::Status::Running, None),
        ProcStatus::Stopped(e) => (pb::Status::Stopped, Some(exit(e))),
    }
}

pub(crate) fn start_error(e: &StartError) -> pb::StartError {
    pb::StartError {
        kind: e.kind.as_str().to_owned(),
        message: e.message.clone(),
    }
}

pub(crate) fn stream(s: StreamKind) -> pb::Stream {
    match s {
        StreamKind::Stdout => pb::Stream::Stdout,
        StreamKind::Stderr => pb::Stream::Stderr,
    }
}

pub(crate) fn process(p: pb::ProcessSpec) -> Process {
    let user = p.user.unwrap_or_default();
    Process {
        args: p.args,
        env: p.env,
        cwd: if p.cwd.is_empty() {
            "/".to_owned()
        } else {
            p.cwd
        },
        user: User {
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            name: user.name,
            additional_groups: user.additional_groups,
        },
        terminal: p.terminal,
        stdin: p.stdin,
        console_size: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_defaults() {
        let p = process(pb::ProcessSpec {
            args: vec!["sh".into()],
            ..Default::default()
        });
        assert_eq!(p.cwd, "/");
        assert_eq!(p.user, User::default());
        let (s, e) = status(&ProcStatus::Stopped(ExitStatus::failed(3)));
        assert_eq!(s, pb::Status::Stopped);
        assert_eq!(e.unwrap().exit_code, 3);
    }

    #[test]
    fn user_name_is_kept() {
        let p = process(pb::ProcessSpec {
            args: vec!["sh".into()],
            user: Some(pb::User {
                uid: 1,
                gid: 2,
                additional_gids: vec![3],
                name: "nobody:users".into(),
                additional_groups: vec!["audio".into()],
            }),
            ..Default::default()
        });
        assert_eq!(
            p.user,
            User {
                uid: 1,
                gid: 2,
                additional_gids: vec![3],
                name: "nobody:users".into(),
                additional_groups: vec!["audio".into()],
            }
        );
    }
}
