//! docker build, the classic builder: the context and Dockerfile ([`Prepared`], checked before
//! any output), then each stage's steps ([`Builder`]), with the exact stream dockerd writes
//! (`Step 1/5 : FROM busybox`, ` ---> 3f57d9401f8d`, ` ---> Using cache`, the `aux` ID per
//! stage, `Successfully built`, `Successfully tagged`).

mod args;
mod builder;
pub(crate) mod cancel;
mod checksum;
mod context;
mod copy;
mod dispatch;
mod fs;
mod hashed;
mod ignore;
mod model;
pub(crate) mod reap;
mod run_step;
pub(crate) mod runner;
pub(crate) mod runtime_runner;
mod state;
mod steps;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use berth_dockerfile::{Command, Dockerfile, Instruction, KeyValue};
use berth_proto::images::v1 as pb;
use berth_types::{Digest, ImageRef};
use tokio::sync::mpsc;

pub(crate) use self::{builder::Builder, state::NewLayer};
use self::{context::Context, runner::StepRunner};
use crate::{ImagesError, platform::Platform, registry::Credentials, service::ImageService};

/// What `POST /build` asks for, checked.
pub(crate) struct BuildSpec {
    pub(crate) tags: Vec<ImageRef>,
    pub(crate) dockerfile: String,
    pub(crate) build_args: BTreeMap<String, Option<String>>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) target: String,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
    /// Remove intermediate containers after each successful step (`rm`), or always
    /// (`forcerm`).
    pub(crate) remove: bool,
    pub(crate) force_remove: bool,
    pub(crate) quiet: bool,
    pub(crate) platform: Option<Platform>,
    /// Images the cache may start from. Every local image with build history is a cache
    /// source already; these are resolved so that an unknown one is reported.
    pub(crate) cache_from: Vec<String>,
    pub(crate) run: pb::BuildRunOptions,
    pub(crate) auths: HashMap<String, Credentials>,
    pub(crate) want_aux: bool,
    /// The client's ID for `POST /build/cancel` (`buildid`); empty: none.
    pub(crate) build_id: String,
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
            remove: o.remove,
            force_remove: o.force_remove,
            quiet: o.quiet,
            platform,
            cache_from: o.cache_from,
            run: o.run.unwrap_or_default(),
            auths,
            want_aux: o.want_aux,
            build_id: o.build_id,
        })
    }
}

/// The build's output. With `quiet`, lines are kept back: only the ID is printed on success,
/// and what was kept back precedes an error.
pub(crate) struct BuildOut {
    pub(super) tx: mpsc::Sender<pb::BuildMessage>,
    pub(super) quiet: bool,
    held: Vec<pb::BuildMessage>,
}

pub(crate) fn message(line: pb::build_message::Line) -> pb::BuildMessage {
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

    pub(super) fn aux(&mut self, id: &Digest) {
        self.send(message(pb::build_message::Line::AuxId(id.to_string())));
    }

    /// The client went away: the build stops.
    pub(super) fn gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// The end of a successful build; the `result` line says so to the gateway.
    pub(crate) fn done(mut self, id: &Digest) {
        if self.quiet {
            let _ = self
                .tx
                .blocking_send(message(pb::build_message::Line::Stream(format!("{id}\n"))));
        }
        self.held.clear();
        let _ = self
            .tx
            .blocking_send(message(pb::build_message::Line::Result(id.to_string())));
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
    pub(super) ctx: Context,
    pub(super) df: Dockerfile,
}

impl ImageService {
    /// Receives the context, reads and parses the Dockerfile, applies `.dockerignore`, and
    /// checks `--target`. Blocking.
    pub(crate) fn prepare_build(
        &self,
        spec: &BuildSpec,
        input: impl crate::pipe::ChunkSource,
    ) -> Result<Prepared, ImagesError> {
        let mut ctx = Context::receive(&self.root.join("build"), input)?;
        tracing::debug!("build: context received");
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

    /// Whether `rec` has the tag `t` and `t` names it: tagging it again changes nothing.
    fn tagged_already(
        &self,
        rec: &crate::store::ImageRecord,
        t: &ImageRef,
    ) -> Result<bool, ImagesError> {
        let t = t.to_string();
        Ok(rec.repo_tags.contains(&t) && self.store.resolve(&t)?.as_ref() == Some(&rec.id))
    }

    /// Runs the build; returns the image. Blocking; `rt` runs the pulls it needs.
    pub(crate) fn run_build(
        self: &Arc<Self>,
        prepared: &Prepared,
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
        tracing::debug!("build: steps done");
        let blob = match self.content.read(&id).map(|b| serde_json::from_slice(&b)) {
            Ok(Ok(serde_json::Value::Object(m))) => m,
            _ => serde_json::Map::new(),
        };
        for t in &spec.tags {
            // dockerd tags, with its event, even when the image had that tag already.
            let event = self.labeled_event("tag", &id, &t.familiar_string(), &blob);
            let rec = self
                .store
                .image(&id)
                .map_err(|e| (e, 0))?
                .ok_or_else(|| (ImagesError::NotFound(format!("No such image: {id}")), 0))?;
            if self.tagged_already(&rec, t).map_err(|e| (e, 0))? {
                // Nothing changes (a cached rebuild): the event alone, without a durable
                // transaction for a change that is not there.
                if let Some(e) = &event {
                    self.events.publish_unsynced(e);
                }
            } else {
                // The tag and its event in one transaction.
                self.commit_image_with(rec, Some(t), None, event.into_iter().collect())
                    .map_err(|e| (e, 0))?;
            }
            b.out
                .stream(format!("Successfully tagged {}\n", t.familiar_string()));
        }
        tracing::debug!("build: tagged");
        Ok(id)
    }
}
