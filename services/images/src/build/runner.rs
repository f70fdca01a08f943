//! RUN steps: a container on the step's image, run with the build's network, hosts and
//! resources, its output streamed into the build; its writable layer becomes the step's layer
//! before the container is removed. The images service starts no process: the containers are
//! the runtime service's ([`super::runtime_runner`]).

use berth_proto::images::v1 as pb;
use serde_json::{Map, Value};

use crate::ImagesError;

/// One RUN step to run.
pub(crate) struct RunStep<'a> {
    /// The image the container starts from.
    pub(crate) image: &'a berth_types::Digest,
    /// The container config: Cmd (the shell form already wrapped), Env with the build
    /// arguments, User, WorkingDir.
    pub(crate) config: &'a Map<String, Value>,
    pub(crate) options: &'a pb::BuildRunOptions,
}

/// What a RUN step printed.
pub(crate) enum RunOutput {
    Stdout(String),
    Stderr(String),
}

/// Runs RUN steps' containers. Blocking: called from the build's thread. The container's
/// snapshot key is its ID (the runtime prepares it so).
pub(crate) trait StepRunner: Send + Sync {
    /// Creates the step's container; returns its ID.
    fn create(&self, step: &RunStep<'_>) -> Result<String, ImagesError>;
    /// Starts it, sends its output to `out` as it comes, and returns its exit code.
    fn run(&self, id: &str, out: &mut dyn FnMut(RunOutput)) -> Result<i64, ImagesError>;
    /// Removes it with its anonymous volumes (what it wrote under a VOLUME path).
    fn remove(&self, id: &str) -> Result<(), ImagesError>;
}

/// A runner without a runtime (unit tests): containers are only named (as for metadata
/// steps, which never start theirs); every RUN fails, saying so.
#[cfg(test)]
pub(crate) struct Unsupported;

#[cfg(test)]
pub(crate) const RUN_UNSUPPORTED: &str = "RUN is not supported yet";

#[cfg(test)]
impl StepRunner for Unsupported {
    fn create(&self, _: &RunStep<'_>) -> Result<String, ImagesError> {
        Ok(uuid::Uuid::new_v4().simple().to_string().repeat(2))
    }
    fn run(&self, _: &str, _: &mut dyn FnMut(RunOutput)) -> Result<i64, ImagesError> {
        Err(ImagesError::Unsupported(RUN_UNSUPPORTED.to_owned()))
    }
    fn remove(&self, _: &str) -> Result<(), ImagesError> {
        Ok(())
    }
}
