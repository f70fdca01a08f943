//! One build's dispatch: the meta ARGs, each stage's FROM (a stage, a local image, a pull, or
//! scratch) and ONBUILD triggers, each step with its `Step N/M` and ` ---> id` lines, the aux
//! ID per stage, the unused build-arg warning and `Successfully built`.

use berth_dockerfile::{Dockerfile, Instruction};
use berth_proto::images::v1 as pb;
use berth_types::{Digest, ImageRef};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{
    BuildOut, BuildSpec, args::BuildArgs, context::Context, message, runner::StepRunner,
    state::StageState,
};
use crate::{
    ImagesError, platform::Platform, progress::ProgressSink, pull::PullSpec, service::ImageService,
    store::ImageRecord,
};
use std::sync::Arc;

/// One build's dispatch state.
pub(crate) struct Builder<'a> {
    pub(super) svc: &'a Arc<ImageService>,
    pub(super) spec: &'a BuildSpec,
    pub(super) out: &'a mut BuildOut,
    pub(super) ctx: &'a Context,
    pub(super) runner: &'a dyn StepRunner,
    pub(super) rt: &'a tokio::runtime::Handle,
    /// Finished stages: name and image.
    pub(super) stages: Vec<(Option<String>, Option<ImageRecord>)>,
    pub(super) escape: char,
}

impl Builder<'_> {
    pub(super) fn build(&mut self, df: &Dockerfile) -> Result<Digest, (ImagesError, i32)> {
        let err = |e: ImagesError| (e, 0);
        let total = df.step_count();
        let mut step = 1;
        let mut args = BuildArgs::new(self.spec.build_args.clone());
        for meta in &df.meta_args {
            self.out
                .stream(format!("Step {step}/{total} : {}\n", meta.code));
            step += 1;
            let mut ins = meta.instruction.clone();
            let env = berth_dockerfile::lex::EnvList(
                args.all_allowed()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            );
            ins.expand(self.escape, &env)
                .map_err(|e| err(ImagesError::InvalidArgument(e)))?;
            if let Instruction::Arg(defs) = ins {
                for d in defs {
                    args.add_arg(&d.key, d.value.clone());
                    args.add_meta_arg(&d.key, d.value);
                }
            }
        }
        let mut last: Option<ImageRecord> = None;
        for stage in &df.stages {
            if let Some(n) = &stage.name
                && self.stages.iter().any(|(s, _)| s.as_deref() == Some(n))
            {
                return Err(err(ImagesError::InvalidArgument(format!(
                    "duplicate name {n}"
                ))));
            }
            self.out
                .stream(format!("Step {step}/{total} : {}\n", stage.code));
            step += 1;
            let mut stage_args = args.clone();
            stage_args.reset_allowed();
            let mut st = self.begin_stage(stage, stage_args).map_err(err)?;
            self.out.stream(format!(" ---> {}\n", st.short_id()));
            let triggers = take_triggers(&mut st);
            if !triggers.is_empty() {
                self.out.stream(format!(
                    "# Executing {} build trigger{}\n",
                    triggers.len(),
                    if triggers.len() > 1 { "s" } else { "" }
                ));
                for t in triggers {
                    let cmd = berth_dockerfile::parse_trigger(&t)
                        .map_err(|e| err(ImagesError::InvalidArgument(e.to_string())))?;
                    self.step(&mut st, cmd.instruction)?;
                }
            }
            for cmd in &stage.commands {
                if self.out.gone() {
                    return Err(err(ImagesError::InvalidArgument(
                        "Build cancelled".to_owned(),
                    )));
                }
                self.out
                    .stream(format!("Step {step}/{total} : {}\n", cmd.code));
                step += 1;
                self.step(&mut st, cmd.instruction.clone())?;
                self.out.stream(format!(" ---> {}\n", st.short_id()));
            }
            if let Some(img) = &st.image
                && self.spec.want_aux
            {
                self.out.aux(&img.id);
            }
            args.merge_referenced(&st.args);
            self.stages.push((stage.name.clone(), st.image.clone()));
            last = st.image;
        }
        if let Some(w) = args.unused_warning() {
            self.out.stream(w);
        }
        let Some(img) = last else {
            return Err(err(ImagesError::InvalidArgument(
                "No image was generated. Is your Dockerfile empty?".to_owned(),
            )));
        };
        self.out
            .stream(format!("Successfully built {}\n", img.id.short()));
        Ok(img.id)
    }

    /// Expands and dispatches one instruction.
    fn step(
        &mut self,
        st: &mut StageState,
        mut ins: Instruction,
    ) -> Result<(), (ImagesError, i32)> {
        let env = st.expansion_env();
        ins.expand(self.escape, &env)
            .map_err(|e| (ImagesError::InvalidArgument(e), 0))?;
        self.dispatch(st, ins)
    }

    fn begin_stage(
        &mut self,
        stage: &berth_dockerfile::Stage,
        args: BuildArgs,
    ) -> Result<StageState, ImagesError> {
        let lx = berth_dockerfile::lex::Lexer::new(self.escape);
        let meta = berth_dockerfile::lex::EnvList(args.all_meta());
        let name = lx
            .process_word(&stage.base, &meta)
            .map_err(ImagesError::InvalidArgument)?;
        if name.is_empty() {
            return Err(ImagesError::InvalidArgument(format!(
                "base name ({}) should not be blank",
                stage.base
            )));
        }
        let platform = match &stage.platform {
            Some(p) => {
                let p = lx.process_word(p, &meta).map_err(|e| {
                    ImagesError::InvalidArgument(format!(
                        "failed to process arguments for platform {p}: {e}"
                    ))
                })?;
                Some(Platform::parse(&p).map_err(|e| {
                    ImagesError::InvalidArgument(format!("failed to parse platform {p}: {e}"))
                })?)
            }
            None => self.spec.platform.clone(),
        };
        if name == "scratch" {
            let p = platform.unwrap_or_else(Platform::host);
            return Ok(StageState::new(None, StageState::scratch_blob(&p), args));
        }
        let rec = match self.stage_image(&name) {
            Some(rec) => rec,
            None => self.image_for(&name, platform.as_ref(), self.spec.pull)?,
        };
        let blob = self.svc.content.read(&rec.id)?;
        let blob = match serde_json::from_slice::<Value>(&blob) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Ok(StageState::new(Some(rec), blob, args))
    }

    /// A finished stage by name (or, for `COPY --from`, index).
    fn stage_image(&self, name: &str) -> Option<ImageRecord> {
        let lower = name.to_lowercase();
        self.stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
            .and_then(|(_, i)| i.clone())
    }

    /// `COPY --from`: a stage (by name or index) or an image; `None` for a scratch stage.
    pub(super) fn source_image(&mut self, from: &str) -> Result<Option<ImageRecord>, ImagesError> {
        let lower = from.to_lowercase();
        if let Some((_, i)) = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            return Ok(i.clone());
        }
        if let Ok(ix) = from.parse::<i64>() {
            return match usize::try_from(ix) {
                Ok(i) if i < self.stages.len() => Ok(self.stages[i].1.clone()),
                Ok(i) if i == self.stages.len() => Err(ImagesError::InvalidArgument(
                    "refers to current build stage".to_owned(),
                )),
                _ => Err(ImagesError::InvalidArgument(
                    "index out of bounds".to_owned(),
                )),
            };
        }
        self.image_for(from, self.spec.platform.clone().as_ref(), false)
            .map(Some)
    }

    /// A local image, pulled when missing (or always, with `--pull`).
    fn image_for(
        &mut self,
        name: &str,
        platform: Option<&Platform>,
        pull: bool,
    ) -> Result<ImageRecord, ImagesError> {
        if !pull && let Ok(rec) = self.svc.find(name) {
            return Ok(rec);
        }
        let reference: ImageRef = name.parse().map_err(|e: berth_types::ReferenceError| {
            ImagesError::InvalidArgument(e.to_string())
        })?;
        let host = reference.registry_host().to_owned();
        let credentials = self
            .spec
            .auths
            .iter()
            .find(|(k, _)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                k.split('/').next() == Some(host.as_str())
                    || (reference.is_docker_hub() && k.starts_with("index.docker.io"))
            })
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let spec = PullSpec {
            reference,
            platform: platform.cloned().unwrap_or_else(Platform::host),
            credentials,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let fwd = self.out.tx.clone();
        let quiet = self.out.quiet;
        let svc = self.svc.clone();
        self.rt.block_on(async move {
            let forward = async move {
                while let Some(p) = rx.recv().await {
                    let p: crate::progress::Progress = p;
                    if !quiet {
                        let _ = fwd
                            .send(message(pb::build_message::Line::Progress(pb::Progress {
                                id: p.id,
                                status: p.status,
                                current: p.current,
                                total: p.total,
                                ..Default::default()
                            })))
                            .await;
                    }
                }
            };
            let (r, ()) = tokio::join!(svc.pull(spec, ProgressSink::new(tx)), forward);
            r
        })
    }
}

/// The base image's ONBUILD triggers, removed from the stage's config.
fn take_triggers(st: &mut StageState) -> Vec<String> {
    let list: Vec<String> = st
        .config()
        .get("OnBuild")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !list.is_empty() {
        st.config_mut().insert("OnBuild".to_owned(), Value::Null);
    }
    list
}
