//! RUN, as moby's `dispatchRun`: the cache probed with the command as the history shows it
//! (the build arguments used prepended), else a container from the step's image (through the
//! [`StepRunner`]) with ` ---> Running in`, its output, its writable layer committed as the
//! step's layer, and its removal as `rm`/`forcerm` say.
//!
//! [`StepRunner`]: super::runner::StepRunner

use serde_json::json;

use super::{
    Builder,
    dispatch::{requires_buildkit, resolve_cmd},
    runner::{RunOutput, RunStep},
    state::StageState,
};
use crate::ImagesError;

fn invalid(msg: impl Into<String>) -> ImagesError {
    ImagesError::InvalidArgument(msg.into())
}

impl Builder<'_> {
    pub(super) fn run(
        &mut self,
        st: &mut StageState,
        run: berth_dockerfile::Run,
    ) -> Result<(), (ImagesError, i32)> {
        let no_code = |e: ImagesError| (e, 0);
        if let Some(f) = run.flags_used.first() {
            return Err((requires_buildkit(f), 0));
        }
        let cmd = resolve_cmd(&run.cmd, st).unwrap_or_default();
        let build_args = st.args.filter_allowed(&st.env());
        // What the cache and the history see: the build arguments used, as moby's
        // `prependEnvOnCmd` writes them (`|1 A=b /bin/sh -c ...`).
        let save_cmd = if build_args.is_empty() {
            cmd.clone()
        } else {
            let mut used: Vec<String> = build_args
                .iter()
                .filter(|e| {
                    let k = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
                    st.args.is_referenced_or_not_builtin(k)
                })
                .cloned()
                .collect();
            used.sort();
            let mut c = vec![format!("|{}", used.len())];
            c.extend(used);
            c.extend(cmd.iter().cloned());
            c
        };
        let mut cc = st.config().clone();
        cc.insert("Cmd".to_owned(), json!(save_cmd));
        if !save_cmd.is_empty() {
            cc.insert("Entrypoint".to_owned(), serde_json::Value::Null);
        }
        let key = serde_json::to_string(&cc).unwrap_or_default();
        if self.probe(st, &key).map_err(no_code)? {
            return Ok(());
        }
        let Some(image) = st.image.as_ref().map(|i| i.id.clone()) else {
            return Err(no_code(invalid(
                "Please provide a source image with `from` prior to run",
            )));
        };
        let mut config = st.config().clone();
        config.insert("Cmd".to_owned(), json!(cmd));
        let mut env = st.env();
        env.extend(build_args);
        config.insert("Env".to_owned(), json!(env));
        config.insert("Entrypoint".to_owned(), json!([""]));
        config.remove("Healthcheck");
        let id = self.intermediate(&image, &config).map_err(no_code)?;
        let result = self.run_container(st, &id, &cmd, cc, key, &save_cmd);
        self.release_intermediate(&id, result.is_ok());
        result
    }

    /// Creates a step's container (` ---> Running in <id>`), as moby's `create`.
    pub(super) fn intermediate(
        &mut self,
        image: &berth_types::Digest,
        config: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, ImagesError> {
        let step = RunStep {
            image,
            config,
            options: &self.spec.run,
        };
        let id = self.runner.create(&step)?;
        self.out
            .stream(format!(" ---> Running in {}\n", short(&id)));
        Ok(id)
    }

    /// After the step: its container removed as `rm` (on success) and `forcerm` (always) say;
    /// one kept is recorded so that a restarted service does not take it for an orphan.
    pub(super) fn release_intermediate(&mut self, id: &str, ok: bool) {
        if self.spec.force_remove || (self.spec.remove && ok) {
            self.remove_container(id);
        } else if let Err(e) = self.svc.store.keep_run_container(id) {
            tracing::warn!(container = id, error = %e, "recording a kept RUN container");
        }
    }

    /// Runs the step's container and commits its writable layer.
    fn run_container(
        &mut self,
        st: &mut StageState,
        id: &str,
        cmd: &[String],
        cc: serde_json::Map<String, serde_json::Value>,
        key: String,
        save_cmd: &[String],
    ) -> Result<(), (ImagesError, i32)> {
        let out = &mut self.out;
        let code = self
            .runner
            .run(id, &mut |o| match o {
                RunOutput::Stdout(s) => out.stream(s),
                RunOutput::Stderr(s) => out.stderr(s),
            })
            .map_err(|e| (e, 0))?;
        if code != 0 {
            let msg = format!(
                "The command '{}' returned a non-zero code: {code}",
                cmd.join(" ")
            );
            let code = i32::try_from(code).unwrap_or(i32::MAX);
            return Err((
                ImagesError::Remote {
                    kind: berth_types::ErrorKind::Internal,
                    message: msg,
                },
                code,
            ));
        }
        let layer = self.svc.snapshot_layer(id).map_err(|e| (e, 0))?;
        self.svc
            .commit_step(st, cc, key, &save_cmd.join(" "), layer)
            .map_err(|e| (e, 0))
    }

    /// Removes an intermediate container, saying so as moby's `RemoveAll` does.
    fn remove_container(&mut self, id: &str) {
        match self.runner.remove(id) {
            Ok(()) => self.out.stream(format!(
                " ---> Removed intermediate container {}\n",
                short(id)
            )),
            Err(e) => self.out.stream(format!(
                "Removing intermediate container {}: {e}\n",
                short(id)
            )),
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
