//! docker create: the image's defaults merged under the request, the record, the snapshot.

use std::sync::Arc;

use berth_proto::{images::v1 as images, runtime::v1 as pb};
use serde_json::{Value, json};

use crate::{
    container::{Container, State, now_rfc3339},
    container_error::ContainerError,
    lifecycle::Containers,
    names,
};

/// Docker's StrSlice: a string is one element, null is none.
fn str_slice(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

fn non_empty(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The image's env, with the request's entries replacing those with the same key.
fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut out: Vec<String> = image
        .iter()
        .filter(|e| !request.iter().any(|r| key(r) == key(e)))
        .cloned()
        .collect();
    out.extend(request.iter().cloned());
    out
}

/// The request's Config with the image's defaults merged in; returns (config, path, args).
pub(crate) fn merge_config(
    request: &Value,
    image_cfg: &Value,
    image: &str,
    hostname: &str,
) -> Result<(Value, String, Vec<String>), ContainerError> {
    let mut config = request.clone();
    if !config.is_object() {
        config = json!({});
    }
    config
        .as_object_mut()
        .map(|m| {
            m.remove("HostConfig");
            m.remove("NetworkingConfig");
        })
        .unwrap_or_default();
    let req_entry = str_slice(&request["Entrypoint"]);
    let req_cmd = str_slice(&request["Cmd"]).filter(|c| !c.is_empty());
    let entrypoint = req_entry
        .clone()
        .or_else(|| str_slice(&image_cfg["Entrypoint"]))
        .unwrap_or_default();
    let cmd = match (&req_cmd, &req_entry) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => str_slice(&image_cfg["Cmd"]).unwrap_or_default(),
    };
    let argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    let Some((path, args)) = argv.split_first() else {
        return Err(ContainerError::invalid("No command specified"));
    };
    let env = merge_env(
        &str_slice(&image_cfg["Env"]).unwrap_or_default(),
        &str_slice(&request["Env"]).unwrap_or_default(),
    );
    let mut labels = image_cfg["Labels"].as_object().cloned().unwrap_or_default();
    if let Some(l) = request["Labels"].as_object() {
        labels.extend(l.clone());
    }
    config["Hostname"] = non_empty(&request["Hostname"])
        .unwrap_or_else(|| hostname.to_owned())
        .into();
    config["Image"] = image.into();
    config["Env"] = json!(env);
    config["Cmd"] = json!(cmd);
    config["Entrypoint"] = if entrypoint.is_empty() {
        Value::Null
    } else {
        json!(entrypoint)
    };
    config["WorkingDir"] = non_empty(&request["WorkingDir"])
        .or_else(|| non_empty(&image_cfg["WorkingDir"]))
        .unwrap_or_default()
        .into();
    config["User"] = non_empty(&request["User"])
        .or_else(|| non_empty(&image_cfg["User"]))
        .unwrap_or_default()
        .into();
    config["Labels"] = Value::Object(labels);
    if let Some(s) =
        non_empty(&request["StopSignal"]).or_else(|| non_empty(&image_cfg["StopSignal"]))
    {
        crate::lifecycle::parse_signal(&s)?;
        config["StopSignal"] = s.into();
    }
    for k in [
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "Tty",
        "OpenStdin",
        "StdinOnce",
    ] {
        if config[k].is_null() {
            config[k] = false.into();
        }
    }
    if config["Domainname"].is_null() {
        config["Domainname"] = "".into();
    }
    Ok((config, path.clone(), args.to_vec()))
}

/// What Docker fills in a HostConfig the client left out (clients such as docker-py read
/// `LogConfig.Type` and `RestartPolicy` from inspect).
fn host_config_defaults(hc: &mut Value, log_driver: &str) {
    if hc["LogConfig"]["Type"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        let opts = match &hc["LogConfig"]["Config"] {
            Value::Object(m) => Value::Object(m.clone()),
            _ => json!({}),
        };
        hc["LogConfig"] = json!({"Type": log_driver, "Config": opts});
    }
    if hc["RestartPolicy"]["Name"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        hc["RestartPolicy"] = json!({"Name": "no", "MaximumRetryCount": 0});
    }
    for k in [
        "AutoRemove",
        "Privileged",
        "PublishAllPorts",
        "ReadonlyRootfs",
    ] {
        if hc[k].is_null() {
            hc[k] = false.into();
        }
    }
}

impl Containers {
    /// docker create.
    pub(crate) async fn create(
        self: &Arc<Self>,
        req: &pb::CreateRequest,
    ) -> Result<pb::CreateResponse, ContainerError> {
        let body: Value = serde_json::from_str(&req.body_json)
            .map_err(|e| ContainerError::invalid(format!("invalid JSON: {e}")))?;
        let image = body["Image"].as_str().unwrap_or_default().to_owned();
        if image.is_empty() {
            return Err(ContainerError::invalid("no image specified"));
        }
        let mut host_config = body["HostConfig"].clone();
        if !host_config.is_object() {
            host_config = json!({});
        }
        let mode = host_config["NetworkMode"].as_str().unwrap_or_default();
        if !matches!(mode, "" | "default" | "none" | "host") {
            return Err(ContainerError::invalid(format!(
                "network mode {mode:?} is not supported yet: use \"none\" or \"host\""
            )));
        }
        if mode.is_empty() {
            host_config["NetworkMode"] = "default".into();
        }
        host_config_defaults(&mut host_config, &self.log_driver);
        let requested = if req.name.is_empty() {
            None
        } else {
            Some(names::validate(&req.name)?)
        };
        let inspected = self
            .images_client()
            .inspect(images::InspectRequest {
                name: image.clone(),
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner();
        let image_json: Value = serde_json::from_str(&inspected.json)
            .map_err(|e| ContainerError::Internal(anyhow::anyhow!("image JSON: {e}")))?;
        let id = names::new_id();
        let (config, path, args) = merge_config(&body, &image_json["Config"], &image, &id[..12])?;

        let _guard = self.lock.lock().await;
        let all = self.store.all()?;
        let name = match requested {
            Some(n) => {
                if let Some(other) = all.iter().find(|c| c.name == n) {
                    return Err(names::conflict(&n, &other.id));
                }
                n
            }
            None => (0..)
                .map(|retry| format!("/{}", names::random_name(retry)))
                .find(|n| !all.iter().any(|c| &c.name == n))
                .unwrap_or_default(),
        };
        let mut c = Container {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            path,
            args,
            config,
            host_config,
            image: image.clone(),
            image_id: inspected.id.clone(),
            rootfs: Value::Null,
            state: State::default(),
            restart_count: 0,
        };
        self.store.put(&c)?;
        let prepared = self
            .images_client()
            .prepare(images::PrepareRequest {
                key: id.clone(),
                image: image.clone(),
            })
            .await;
        let prepared = match prepared {
            Ok(p) => p.into_inner(),
            Err(e) => {
                self.store.delete(&id)?;
                return Err(ContainerError::upstream(&e));
            }
        };
        let Some(m) = prepared.mounts.first() else {
            self.store.delete(&id)?;
            return Err(ContainerError::Internal(anyhow::anyhow!(
                "images.Prepare returned no mount"
            )));
        };
        c.rootfs = json!({"type": m.r#type, "source": m.source, "options": m.options});
        if !prepared.image_id.is_empty() {
            c.image_id = prepared.image_id;
        }
        self.store.put(&c)?;
        self.bump();
        self.event(&c, "create", &[]);
        Ok(pb::CreateResponse {
            id,
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_config_gets_docker_defaults() {
        let mut hc =
            json!({"AutoRemove": true, "LogConfig": {"Type": "", "Config": {"max-size": "1m"}}});
        host_config_defaults(&mut hc, "json-file");
        assert_eq!(
            hc["LogConfig"],
            json!({"Type": "json-file", "Config": {"max-size": "1m"}})
        );
        assert_eq!(hc["RestartPolicy"]["Name"], "no");
        assert_eq!(hc["AutoRemove"], true);
        assert_eq!(hc["Privileged"], false);
    }

    #[test]
    fn image_defaults_merge_under_the_request() {
        let img = json!({"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "WorkingDir": "/w"});
        let (cfg, path, args) = merge_config(
            &json!({"Cmd": ["echo", "hi"], "Env": ["A=2"]}),
            &img,
            "bb",
            "abc",
        )
        .unwrap();
        assert_eq!(path, "echo");
        assert_eq!(args, ["hi"]);
        assert_eq!(cfg["Env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(cfg["WorkingDir"], "/w");
        assert_eq!(cfg["Hostname"], "abc");

        let img = json!({"Entrypoint": ["/ep"], "Cmd": ["x"]});
        let (_, path, args) = merge_config(&json!({}), &img, "bb", "h").unwrap();
        assert_eq!((path.as_str(), args), ("/ep", vec!["x".to_owned()]));
        let (_, path, args) = merge_config(&json!({"Cmd": ["y"]}), &img, "bb", "h").unwrap();
        assert_eq!((path.as_str(), args), ("/ep", vec!["y".to_owned()]));
        let (_, path, args) =
            merge_config(&json!({"Entrypoint": ["/other"]}), &img, "bb", "h").unwrap();
        assert_eq!((path.as_str(), args.len()), ("/other", 0));
        assert!(merge_config(&json!({}), &json!({}), "bb", "h").is_err());
        let bad = merge_config(&json!({"Cmd": ["x"], "StopSignal": "FOO"}), &img, "bb", "h");
        assert_eq!(bad.unwrap_err().to_string(), "Invalid signal: FOO");
    }
}
