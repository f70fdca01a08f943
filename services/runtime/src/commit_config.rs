//! What docker commit hands the images service: the container's config (its effective spec,
//! the image's defaults merged in at create) as an image config, and the container fields
//! dockerd keeps in a committed image's config.

use berth_proto::{images::v1 as images, runtime::v1 as pb};

use crate::container::Container;

fn list(l: Option<&pb::StringList>) -> Option<images::StringList> {
    l.map(|l| images::StringList {
        values: l.values.clone(),
    })
}

fn health(h: Option<&pb::HealthCheck>) -> Option<images::HealthConfig> {
    h.map(|h| images::HealthConfig {
        test: h.test.clone(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        start_interval: h.start_interval,
        retries: i64::from(h.retries),
    })
}

/// The container's config: what a container of the new image runs with by default.
pub(crate) fn image_config(c: &Container) -> images::ImageConfig {
    let p = c.process();
    let mut volumes = c.spec.image_volumes.clone();
    for m in &c.spec.mounts {
        // `-v /path`: an anonymous volume dockerd lists in Config.Volumes.
        if m.r#type == pb::mount_spec::Type::Volume as i32
            && m.source.is_empty()
            && m.from_binds
            && !volumes.contains(&m.target)
        {
            volumes.push(m.target.clone());
        }
    }
    images::ImageConfig {
        user: p.user.clone(),
        exposed_ports: c
            .spec
            .network
            .as_ref()
            .map(|n| n.exposed_ports.clone())
            .unwrap_or_default(),
        env: p.env.clone(),
        entrypoint: list(p.entrypoint.as_ref()),
        cmd: list(p.cmd.as_ref()),
        volumes,
        working_dir: p.working_dir.clone(),
        labels: c.spec.labels.clone(),
        stop_signal: c.spec.stop_signal.clone(),
        args_escaped: p.args_escaped,
        healthcheck: health(c.spec.health_check.as_ref()),
        on_build: Vec::new(),
        shell: (!p.shell.is_empty()).then(|| images::StringList {
            values: p.shell.clone(),
        }),
    }
}

/// The config a client sent with POST /commit.
pub(crate) fn from_request(u: &pb::CommitConfig) -> images::ImageConfig {
    images::ImageConfig {
        user: u.user.clone(),
        exposed_ports: u.exposed_ports.clone(),
        env: u.env.clone(),
        entrypoint: list(u.entrypoint.as_ref()),
        cmd: list(u.cmd.as_ref()),
        volumes: u.volumes.clone(),
        working_dir: u.working_dir.clone(),
        labels: u.labels.clone(),
        stop_signal: u.stop_signal.clone(),
        args_escaped: false,
        healthcheck: health(u.health_check.as_ref()),
        on_build: u.on_build.clone(),
        shell: (!u.shell.is_empty()).then(|| images::StringList {
            values: u.shell.clone(),
        }),
    }
}

/// The container fields of the config.
pub(crate) fn fields(c: &Container) -> images::ContainerFields {
    let p = c.process();
    images::ContainerFields {
        hostname: c.spec.hostname.clone(),
        domainname: c.spec.domainname.clone(),
        attach_stdin: p.attach_stdin,
        attach_stdout: p.attach_stdout,
        attach_stderr: p.attach_stderr,
        tty: p.tty,
        open_stdin: p.open_stdin,
        stdin_once: p.stdin_once,
        image: c.spec.image.clone(),
    }
}
