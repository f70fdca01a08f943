//! docker build, the classic builder: the context and Dockerfile ([`Prepared`], checked before
//! any output), then each stage's steps ([`Builder`]), with the exact stream dockerd writes
//! (`Step 1/5 : FROM busybox`, ` ---> 3f57d9401f8d`, ` ---> Using cache`, the `aux` ID per
//! stage, `Successfully built`, `Successfully tagged`).

mod args;
mod context;
mod copy;
mod dispatch;
mod fs;
mod ignore;
pub(crate) mod runner;
mod state;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use berth_dockerfile::{Command, Dockerfile, Instruction, KeyValue};
use berth_proto::images::v1 as pb;
use berth_types::{Digest, ImageRef};
use serde_json::Value;
use tokio::sync::mpsc;

use self::{args::BuildArgs, context::Context, runner::StepRunner, state::StageState};
use crate::{
    ImagesError, platform::Platform, progress::ProgressSink, pull::PullSpec, registry::Credentials,
    service::ImageService, store::ImageRecord,
};

/// What `POST /build` asks for, checked.
pub(crate) struct BuildSpec {
    pub(crate) tags: Vec<ImageRef>,
    pub(crate) dockerfile: String,
    pub(crate) build_args: BTreeMap<String, Option<String>>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) target: String,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
    pub(crate) quiet: bool,
    pub(crate) platform: Option<Platform>,
    /// Images the cache may start from. Every local image with build history is a cache
    /// source already; these are resolved so that an unknown one is reported.
    pub(crate) cache_from: Vec<String>,
    pub(crate) run: pb::BuildRunOptions,
    pub(crate) auths: HashMap<String, Credentials>,
    pub(crate) want_aux: bool,
}

impl BuildSpec {
    /// Checks the options, as moby does before it reads the context.
    pub(crate) fn from_pb(o: pb::BuildOptions) -> Result<BuildSpec, ImagesError> {
        let mut tags: Vec<ImageRef> = Vec::new();
        for t in o.tags.iter().filter(|t| !t.is_empty()) {
            let r: ImageRef = t.parse().map_err(|e: berth_types::ReferenceError| {
                ImagesError::InvalidArgument(e.to_string())
            })?;
            if r.digest().is_some() {
                return Err(ImagesError::InvalidArgument(
                    "build tag cannot contain a digest".to_owned(),
                ));
            }
            let r = r.with_default_tag();
            if !tags.contains(&r) {
                tags.push(r);
            }
        }
        let platform = match o.platform.as_str() {
            "" => None,
            p => Some(Platform::parse(p)?),
        };
        let auths = o
            .auths
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    Credentials {
                        username: a.username,
                        password: a.password,
                        registry_token: a.registry_token,
                    },
                )
            })
            .collect();
        Ok(BuildSpec {
            tags,
            dockerfile: if o.dockerfile.is_empty() {
                "Dockerfile".to_owned()
            } else {
                o.dockerfile
            },
            build_args: o.build_args.into_iter().map(|a| (a.key, a.value)).collect(),
            labels: o.labels.into_iter().collect(),
            target: o.target,
            no_cache: o.no_cache,
            pull: o.pull,
            quiet: o.quiet,
            platform,
            cache_from: o.cache_from,
            run: o.run.unwrap_or_default(),
            auths,
            want_aux: o.want_aux,
        })
    }
}

/// The build's output. With `quiet`, lines are kept back: only the ID is printed on success,
/// and what was kept back precedes an error.
pub(crate) struct BuildOut {
    tx: mpsc::Sender<pb::BuildMessage>,
    quiet: bool,
    held: Vec<pb::BuildMessage>,
}

fn message(line: pb::build_message::Line) -> pb::BuildMessage {
    pb::BuildMessage { line: Some(line) }
}

impl BuildOut {
    pub(crate) fn new(tx: mpsc::Sender<pb::BuildMessage>, quiet: bool) -> BuildOut {
        BuildOut {
            tx,
            quiet,
            held: Vec::new(),
        }
    }

    fn send(&mut self, m: pb::BuildMessage) {
        if self.quiet {
            self.held.push(m);
        } else {
            let _ = self.tx.blocking_send(m);
        }
    }

    pub(crate) fn stream(&mut self, s: impl Into<String>) {
        self.send(message(pb::build_message::Line::Stream(s.into())));
    }

    pub(crate) fn stderr(&mut self, s: impl Into<String>) {
        self.send(message(pb::build_message::Line::Stderr(s.into())));
    }

    fn aux(&mut self, id: &Digest) {
        self.send(message(pb::build_message::Line::AuxId(id.to_string())));
    }

    /// The client went away: the build stops.
    fn gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// The end of a successful build.
    pub(crate) fn done(mut self, id: &Digest) {
        if self.quiet {
            let _ = self
                .tx
                .blocking_send(message(pb::build_message::Line::Stream(format!("{id}\n"))));
        }
        self.held.clear();
    }

    /// The end of a failed build: what was held back, then the error.
    pub(crate) fn failed(self, e: &ImagesError, code: i32) {
        use berth_errors::HasKind;
        for m in self.held {
            let _ = self.tx.blocking_send(m);
        }
        let _ = self
            .tx
            .blocking_send(message(pb::build_message::Line::Error(pb::BuildError {
                message: e.to_string(),
                kind: e.kind().as_str().to_owned(),
                code,
            })));
    }
}

/// A context received and its Dockerfile parsed: everything that can fail before output.
pub(crate) struct Prepared {
    ctx: Context,
    df: Dockerfile,
}

impl ImageService {
    /// Receives the context, reads and parses the Dockerfile, applies `.dockerignore`, and
    /// checks `--target`. Blocking.
    pub(crate) fn prepare_build(
        &self,
        spec: &BuildSpec,
        input: impl std::io::Read,
    ) -> Result<Prepared, ImagesError> {
        let ctx = Context::receive(&self.root.join("build"), input)?;
        let (name, text) = ctx.dockerfile(&spec.dockerfile)?;
        let mut df = berth_dockerfile::parse(&text).map_err(|e| {
            ImagesError::InvalidArgument(if e.instruction {
                e.to_string()
            } else {
                format!("failed to parse {name}: {e}")
            })
        })?;
        ctx.apply_dockerignore()?;
        if !spec.target.is_empty() {
            let Some(i) = df.stage_index(&spec.target) else {
                return Err(ImagesError::InvalidArgument(format!(
                    "target stage {} could not be found",
                    serde_json::to_string(&spec.target).unwrap_or_default()
                )));
            };
            df.stages.truncate(i + 1);
        }
        // --label: one LABEL per label, sorted, at the end of the last stage (unexpanded).
        if let Some(last) = df.stages.last_mut() {
            for (k, v) in &spec.labels {
                last.commands.push(Command {
                    line: 0,
                    code: format!("LABEL {k}={v}"),
                    instruction: Instruction::Label(vec![KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                        no_delim: false,
                    }]),
                });
            }
        }
        Ok(Prepared { ctx, df })
    }

    /// Runs the build; returns the image. Blocking; `rt` runs the pulls it needs.
    pub(crate) fn run_build(
        self: &Arc<Self>,
        prepared: Prepared,
        spec: &BuildSpec,
        out: &mut BuildOut,
        runner: &dyn StepRunner,
        rt: &tokio::runtime::Handle,
    ) -> Result<Digest, (ImagesError, i32)> {
        for r in &spec.cache_from {
            if self.find(r).is_err() {
                tracing::debug!(image = %r, "cache-from image not found; ignored as dockerd does");
            }
        }
        let mut b = Builder {
            svc: self,
            spec,
            out,
            ctx: &prepared.ctx,
            runner,
            rt,
            stages: Vec::new(),
            escape: prepared.df.escape,
        };
        let id = b.build(&prepared.df)?;
        for t in &spec.tags {
            self.commit_image(
                self.store
                    .image(&id)
                    .map_err(|e| (e, 0))?
                    .ok_or_else(|| (ImagesError::NotFound(format!("No such image: {id}")), 0))?,
                Some(t),
                None,
            )
            .map_err(|e| (e, 0))?;
            self.event("tag", &id.to_string(), &t.familiar_string());
            b.out
                .stream(format!("Successfully tagged {}\n", t.familiar_string()));
        }
        Ok(id)
    }
}

/// One build's dispatch state.
pub(crate) struct Builder<'a> {
    svc: &'a Arc<ImageService>,
    spec: &'a BuildSpec,
    out: &'a mut BuildOut,
    ctx: &'a Context,
    runner: &'a dyn StepRunner,
    rt: &'a tokio::runtime::Handle,
    /// Finished stages: name and image.
    stages: Vec<(Option<String>, Option<ImageRecord>)>,
    escape: char,
}

impl Builder<'_> {
    fn build(&mut self, df: &Dockerfile) -> Result<Digest, (ImagesError, i32)> {
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
    fn source_image(&mut self, from: &str) -> Result<Option<ImageRecord>, ImagesError> {
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
