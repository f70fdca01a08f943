//! RUN steps: a container on the step's image, run with the build's network, hosts and
//! resources, its output streamed into the build, its changes committed as the step's layer.
//! That needs the runtime service (the images service starts no process) and `docker
//! commit`'s container-diff-to-layer operation; until both are wired, RUN fails clearly
//! instead of being skipped.

use berth_proto::images::v1 as pb;
use serde_json::{Map, Value};

use super::state::NewLayer;
use crate::ImagesError;

/// One RUN step to run.
#[allow(
    dead_code,
    reason = "read by the runtime-backed runner that lands with docker commit"
)]
pub(crate) struct RunStep<'a> {
    /// The image the container starts from (`None`: scratch).
    pub(crate) image: Option<&'a berth_types::Digest>,
    /// The container config: Cmd (the shell form already wrapped), Env with the build
    /// arguments, User, WorkingDir, Entrypoint cleared.
    pub(crate) config: &'a Map<String, Value>,
    pub(crate) options: &'a pb::BuildRunOptions,
}

/// What a RUN step printed.
#[allow(
    dead_code,
    reason = "produced by the runtime-backed runner that lands with docker commit"
)]
pub(crate) enum RunOutput {
    Stdout(String),
    Stderr(String),
}

/// A finished RUN: the container that ran (for ` ---> Running in` and its removal) and the
/// layer of its changes.
pub(crate) struct RunResult {
    pub(crate) container: String,
    pub(crate) layer: Option<NewLayer>,
}

/// Runs RUN steps. Blocking: called from the build's thread.
pub(crate) trait StepRunner: Send + Sync {
    /// Runs the step; output goes to `out` as it comes. A non-zero exit is
    /// `Err((message, code))` with dockerd's message.
    fn run(
        &self,
        step: &RunStep<'_>,
        out: &mut dyn FnMut(RunOutput),
    ) -> Result<RunResult, (ImagesError, i32)>;
}

/// The runner until the runtime client and commit are wired: every RUN fails, saying so.
pub(crate) struct Unsupported;

pub(crate) const RUN_UNSUPPORTED: &str = "RUN is not supported yet";

impl StepRunner for Unsupported {
    fn run(
        &self,
        _: &RunStep<'_>,
        _: &mut dyn FnMut(RunOutput),
    ) -> Result<RunResult, (ImagesError, i32)> {
        Err((ImagesError::Unsupported(RUN_UNSUPPORTED.to_owned()), 0))
    }
}
