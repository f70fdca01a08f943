//! The steps that write a layer: WORKDIR (a new directory), COPY and ADD (from the context,
//! another stage or image, heredocs, loopback URLs). RUN is in `run_step`.

use serde_json::json;

use super::{
    Builder,
    copy::{CopyPlan, CopyRequest, parse_chown},
    dispatch::requires_buildkit,
    fs::Tree,
    state::{NewLayer, StageState, nop_cmd},
};
use crate::ImagesError;

fn invalid(msg: impl Into<String>) -> ImagesError {
    ImagesError::InvalidArgument(msg.into())
}

impl Builder<'_> {
    pub(super) fn workdir(&mut self, st: &mut StageState, dir: &str) -> Result<(), ImagesError> {
        let current = st.workdir();
        let joined = if dir.starts_with('/') {
            dir.to_owned()
        } else {
            format!("{}/{dir}", if current.is_empty() { "/" } else { &current })
        };
        let wd = super::copy::normalize_dest("/", &joined);
        let wd = if wd.len() > 1 {
            wd.trim_end_matches('/').to_owned()
        } else {
            wd
        };
        st.config_mut().insert("WorkingDir".to_owned(), json!(wd));
        let comment = format!("WORKDIR {wd}");
        let cmd = nop_cmd(&st.shell(), &comment, false);
        let (cc, key) = crate::service::ImageService::step_key(st, &cmd);
        if self.probe(st, &key)? {
            return Ok(());
        }
        let image = self.svc.image_tree(st.image.as_ref());
        let layer = if image.is_dir(&wd) {
            None
        } else {
            // The directory (and its missing parents), as `mkdir -p` in a container would.
            let empty = tempfile_dir(&self.svc.root)?;
            let plan = CopyPlan::new(
                CopyRequest {
                    add: false,
                    sources: &[".".to_owned()],
                    inline: vec![],
                    downloads: vec![],
                    dest: &format!("{wd}/"),
                    workdir: "/",
                    owner: Some((0, 0)),
                },
                &Tree::new(vec![empty.clone()]),
                &image,
                None,
            )?;
            let layer = self.write_layer(&plan, &Tree::new(vec![empty.clone()]), &image);
            let _ = std::fs::remove_dir_all(&empty);
            Some(layer?)
        };
        self.commit_in_container(st, cc, key, &cmd.join(" "), layer)
    }

    fn write_layer(
        &self,
        plan: &CopyPlan,
        src: &Tree,
        image: &Tree,
    ) -> Result<NewLayer, ImagesError> {
        let mut w = self.svc.content.writer()?;
        let mut hashing = HashingWriter {
            inner: &mut w,
            digester: berth_types::Sha256Digester::new(),
        };
        plan.write_layer(src, image, &mut hashing)?;
        let diff_id = hashing.digester.finish();
        let size = w.written();
        if self.svc.content.exists(&diff_id) {
            drop(w);
        } else {
            w.commit(Some(&diff_id), Some(size))?;
        }
        Ok(NewLayer { diff_id, size })
    }

    pub(super) fn copy(
        &mut self,
        st: &mut StageState,
        c: berth_dockerfile::Copy,
        add: bool,
    ) -> Result<(), ImagesError> {
        let cmd_name = if add { "ADD" } else { "COPY" };
        if !c.chmod.is_empty() {
            return Err(requires_buildkit("chmod"));
        }
        if let Some(f) = c.unsupported_flags.first() {
            return Err(requires_buildkit(f));
        }
        // --link only changes how BuildKit stacks the layer; the files are the same.
        let image = self.svc.image_tree(st.image.as_ref());
        let owner = if !c.chown.is_empty() {
            Some(parse_chown(&c.chown, &image)?)
        } else if !c.from.is_empty() {
            None
        } else {
            Some((0, 0))
        };
        let from_context = c.from.is_empty();
        let is_url = |s: &String| s.starts_with("http://") || s.starts_with("https://");
        // A plain context's model keys the step without its files on disk; they are
        // unpacked only for a miss.
        let modelled = from_context && c.contents.is_empty() && !c.sources.iter().any(is_url);
        let workdir = st.workdir();
        let dest = super::copy::normalize_dest(&workdir, &c.dest);
        let model_checksum = self
            .ctx
            .model()
            .filter(|_| modelled)
            .and_then(|m| m.copy_checksum(&c.sources, &dest));
        let chown = if c.chown.is_empty() {
            String::new()
        } else {
            format!("--chown={} ", c.chown)
        };
        let model_key = model_checksum.map(|sum| {
            let comment = format!("{cmd_name} {chown}{sum} in {} ", dest.trim_end_matches('/'));
            let cmd = nop_cmd(&st.shell(), &comment, false);
            let (cc, key) = crate::service::ImageService::step_key(st, &cmd);
            (cmd, cc, key)
        });
        if let Some((_, _, key)) = &model_key
            && self.probe(st, key)?
        {
            return Ok(());
        }
        let src = if from_context {
            Tree::new(vec![self.ctx.unpacked()?.dir.clone()])
        } else {
            let rec = self
                .source_image(&c.from)
                .map_err(|e| invalid(format!("invalid from flag value {}: {e}", c.from)))?;
            self.svc.image_tree(rec.as_ref())
        };
        let mut downloads = Vec::new();
        let mut sources = Vec::new();
        for s in &c.sources {
            if add && is_url(s) {
                downloads.push(self.download(s)?);
            } else {
                sources.push(s.clone());
            }
        }
        let inline = c
            .contents
            .iter()
            .map(|f| (f.path.clone(), f.data.clone().into_bytes()))
            .collect();
        let plan = CopyPlan::new(
            CopyRequest {
                add,
                sources: &sources,
                inline,
                downloads,
                dest: &c.dest,
                workdir: &workdir,
                owner,
            },
            &src,
            &image,
            if from_context {
                Some(&self.ctx.unpacked()?.digests)
            } else {
                None
            },
        )?;
        let (cmd, cc, key) = match model_key {
            // Probed above: a miss.
            Some(k) => k,
            None => {
                let comment = format!("{cmd_name} {chown}{} in {} ", plan.checksum, plan.dest());
                let cmd = nop_cmd(&st.shell(), &comment, false);
                let (cc, key) = crate::service::ImageService::step_key(st, &cmd);
                if self.probe(st, &key)? {
                    return Ok(());
                }
                (cmd, cc, key)
            }
        };
        let layer = self.write_layer(&plan, &src, &image)?;
        self.svc
            .commit_step(st, cc, key, &cmd.join(" "), Some(layer))
    }
}

impl Builder<'_> {
    /// ADD of a URL: only `http://` on the loopback interface (as `docker import` of a URL),
    /// saved with mode 0600 under the file name the URL ends with.
    fn download(&mut self, url: &str) -> Result<(String, std::path::PathBuf), ImagesError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| invalid(format!("invalid URL {url}: {e}")))?;
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if parsed.scheme() != "http" || !loopback {
            return Err(ImagesError::Unsupported(format!(
                "ADD {url}: only http:// URLs on the loopback interface can be downloaded"
            )));
        }
        let name = parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("cannot determine filename from url: {url}")))?;
        let body = self.rt.block_on(async {
            let res = reqwest::get(parsed.clone())
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            if !status.is_success() {
                return Err(format!("failed to GET {url} with status {status}"));
            }
            res.bytes().await.map_err(|e| e.to_string())
        });
        let body = body.map_err(invalid)?;
        let dir = self
            .ctx
            .scratch()?
            .join(format!("download-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| ImagesError::io(&dir, e))?;
        let path = dir.join(&name);
        std::fs::write(&path, &body).map_err(|e| ImagesError::io(&path, e))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| ImagesError::io(&path, e))?;
        Ok((name, path))
    }
}

fn tempfile_dir(root: &std::path::Path) -> Result<std::path::PathBuf, ImagesError> {
    let d = root
        .join("build")
        .join(format!("empty-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).map_err(|e| ImagesError::io(&d, e))?;
    Ok(d)
}

struct HashingWriter<'a, W> {
    inner: &'a mut W,
    digester: berth_types::Sha256Digester,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
