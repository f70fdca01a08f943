//! dockerd's words for a container process that could not be started. Clients match them:
//! the docker CLI picks `docker run`'s exit code from the message alone (127 when it says
//! "executable file not found" or "no such file or directory", 126 for "permission denied"
//! or "is a directory", 125 otherwise), so the shim's reasons read as runc's (Go's errno
//! texts) and are wrapped as dockerd wraps runc's (daemon/start.go, with containerd's
//! `OCI runtime create failed` and its `: unknown` class suffix). Only the runtime's own name
//! differs: `berth-shim create failed` where dockerd says `runc create failed`.

use berth_types::ErrorKind;

/// The container's exit code, the error's class and its text for a start that the shim
/// refused with `kind` (`not-found`, `permission`, anything else) and `message`.
pub(crate) fn start_failure(kind: &str, message: &str) -> (i64, ErrorKind, String) {
    let (code, stage) = match kind {
        // The executable: runc's exec step, no "container init" in its words.
        "not-found" => (127, ""),
        "permission" => (126, ""),
        _ => (125, "error during container init: "),
    };
    let mut text = format!(
        "failed to create task for container: failed to create shim task: OCI runtime create \
         failed: berth-shim create failed: unable to start container process: {stage}{message}: unknown"
    );
    // dockerd's hint (translateContainerdStartErr), with its exit code.
    let not_a_dir = code == 125 && message.contains("not a directory");
    if not_a_dir {
        text.push_str(
            ": Are you trying to mount a directory onto a file (or vice-versa)? Check if the \
             specified host path exists and is the expected type",
        );
    }
    let code = if not_a_dir { 127 } else { code };
    let class = if code == 125 {
        ErrorKind::Internal
    } else {
        ErrorKind::InvalidArgument
    };
    (code, class, text)
}

/// dockerd's words for an exec whose process could not be started.
pub(crate) fn exec_failure(message: &str) -> String {
    format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As dockerd 20.10 with runc 1.1 answers (compared side by side), after the
    /// `failed to create task for container: ` newer dockerds put first.
    #[test]
    fn start_failures_read_as_dockerds() {
        let shape = |s: &str| {
            format!(
                "failed to create task for container: failed to create shim task: OCI runtime create failed: berth-shim create failed: unable to start container process: {s}: unknown"
            )
        };
        let (code, class, text) = start_failure(
            "not-found",
            "exec: \"nosuchcmd\": executable file not found in $PATH",
        );
        assert_eq!((code, class), (127, ErrorKind::InvalidArgument));
        assert_eq!(
            text,
            shape("exec: \"nosuchcmd\": executable file not found in $PATH")
        );
        let (code, _, text) = start_failure("permission", "exec: \"/etc\": permission denied");
        assert_eq!(code, 126);
        assert_eq!(text, shape("exec: \"/etc\": permission denied"));
        let (code, class, text) =
            start_failure("other", "sysctl net.x=1: no such file or directory");
        assert_eq!((code, class), (125, ErrorKind::Internal));
        assert_eq!(
            text,
            shape("error during container init: sysctl net.x=1: no such file or directory")
        );
        let (code, _, text) = start_failure(
            "other",
            "error mounting \"/a\" to rootfs at \"/etc/passwd/x\": mkdir /etc/passwd/x: not a directory",
        );
        assert_eq!(code, 127);
        assert!(text.ends_with(": not a directory: unknown: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type"), "{text}");
    }

    #[test]
    fn exec_failures_read_as_dockerds() {
        assert_eq!(
            exec_failure("exec: \"x\": executable file not found in $PATH"),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"x\": executable file not found in $PATH: unknown"
        );
    }
}
