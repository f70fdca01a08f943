//! A [`Node`] as a typed [`Instruction`] (buildkit's `instructions.Parse*`), with the same
//! argument checks and messages.

use std::sync::OnceLock;

use regex::Regex;

use crate::{
    duration::parse_go_duration,
    flags::{Flags, Kind},
    lines::{Heredoc, Node, parse_heredoc},
};

/// `key=value` of ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written the legacy way (`ENV key value`).
    pub no_delim: bool,
}

impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    pub key: String,
    pub value: Option<String>,
}

/// RUN, CMD and ENTRYPOINT's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// Exec form: the words; shell form: one string.
    pub args: Vec<String>,
    /// Shell form (run through the SHELL).
    pub prepend_shell: bool,
    /// Heredocs (`RUN <<EOF`).
    pub files: Vec<Heredoc>,
}

/// RUN: its command and the `--mount`/`--network`/`--security`/`--device` flags given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub cmd: ShellCommand,
    pub flags_used: Vec<String>,
}

/// A file written inline by a heredoc (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub path: String,
    pub data: String,
    pub expand: bool,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub sources: Vec<String>,
    pub contents: Vec<InlineFile>,
    pub dest: String,
    pub from: String,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    /// Flags the classic builder does not implement (`exclude`, `parents`, `checksum`,
    /// `keep-git-dir`, `unpack`), as given: the builder refuses them by name.
    pub unsupported_flags: Vec<String>,
}

/// HEALTHCHECK: `test` is `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`; durations in
/// nanoseconds (0 = the default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Add(Copy),
    Copy(Copy),
    /// The trigger as written (without `ONBUILD`).
    Onbuild(String),
    Workdir(String),
    Run(Run),
    Cmd(ShellCommand),
    Entrypoint(ShellCommand),
    Healthcheck(Health),
    Expose(Vec<String>),
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
    Arg(Vec<ArgDef>),
    Shell(Vec<String>),
}

impl Instruction {
    /// The instruction's name, uppercase.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::User(_) => "USER",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Arg(_) => "ARG",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

pub(crate) enum Parsed {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Command(Instruction),
}

const ALL: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn stage_name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new("^[a-z][a-z0-9-_.]*$").expect("a valid regex"))
}

fn onbuild_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)^\s*ONBUILD\s*").expect("a valid regex"))
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `unknown instruction: X`, with buildkit's suggestion when one is close.
fn unknown(cmd: &str) -> String {
    let lower = cmd.to_lowercase();
    let mut best: Option<&str> = None;
    let mut min = 3;
    for opt in ALL {
        let d = distance(&lower, &opt.to_lowercase());
        if d < min {
            min = d;
            best = Some(opt);
        }
    }
    let base = format!("unknown instruction: {cmd}");
    match best {
        Some(m) => {
            let m = if cmd == lower {
                m.to_lowercase()
            } else if cmd == cmd.to_uppercase() {
                m.to_owned()
            } else {
                m.to_lowercase()
            };
            format!("{base} (did you mean {m}?)")
        }
        None => base,
    }
}

fn shell_dependent(node: &Node, empty_as_nil: bool) -> ShellCommand {
    let args = if node.json || node.args.is_empty() {
        node.args.clone()
    } else {
        vec![node.args.join(" ")]
    };
    let _ = empty_as_nil;
    ShellCommand {
        args,
        prepend_shell: !node.json,
        files: node.heredocs.clone(),
    }
}

fn no_flags(node: &Node) -> Result<(), String> {
    Flags::new(&node.flags).parse().map(|_| ())
}

fn key_values(node: &Node, cmd: &str) -> Result<Vec<KeyValue>, String> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !node.args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    node.args
        .chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(format!("{cmd} names can not be blank"));
            }
            Ok(KeyValue {
                key: c[0].clone(),
                value: c[1].clone(),
                no_delim: c[2].is_empty(),
            })
        })
        .collect()
}

fn copy_like(node: &Node, add: bool) -> Result<Copy, String> {
    let cmd = if add { "ADD" } else { "COPY" };
    if node.args.len() < 2 {
        return Err(format!(
            "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let mut flags = Flags::new(&node.flags)
        .declare("chown", Kind::String)
        .declare("chmod", Kind::String)
        .declare("link", Kind::Bool)
        .declare("exclude", Kind::Strings);
    flags = if add {
        flags
            .declare("keep-git-dir", Kind::Bool)
            .declare("checksum", Kind::String)
            .declare("unpack", Kind::Bool)
    } else {
        flags
            .declare("from", Kind::String)
            .declare("parents", Kind::Bool)
    };
    let flags = flags.parse()?;
    let (srcs, dest) = node.args.split_at(node.args.len() - 1);
    let dest = dest[0].clone();
    if parse_heredoc(&dest)?.is_some() {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut out = Copy {
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link").unwrap_or(false),
        unsupported_flags: flags
            .used()
            .into_iter()
            .filter(|f| {
                matches!(
                    f.as_str(),
                    "exclude" | "parents" | "checksum" | "keep-git-dir" | "unpack"
                )
            })
            .collect(),
        ..Copy::default()
    };
    for src in srcs {
        match parse_heredoc(src)? {
            Some((name, expand, chomp, _)) => {
                let mut data = node
                    .heredocs
                    .iter()
                    .find(|h| h.name == name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                if chomp {
                    data = data
                        .split_inclusive('\n')
                        .map(|l| l.trim_start_matches('\t'))
                        .collect();
                }
                out.contents.push(InlineFile {
                    path: name,
                    data,
                    expand,
                });
            }
            None => out.sources.push(src.clone()),
        }
    }
    Ok(out)
}

fn healthcheck(node: &Node) -> Result<Health, String> {
    let Some(typ) = node.args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let typ = typ.to_uppercase();
    let args = &node.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".to_owned());
        }
        return Ok(Health {
            test: vec![typ],
            ..Health::default()
        });
    }
    let flags = Flags::new(&node.flags)
        .declare("interval", Kind::String)
        .declare("timeout", Kind::String)
        .declare("start-period", Kind::String)
        .declare("start-interval", Kind::String)
        .declare("retries", Kind::String)
        .parse()?;
    if typ != "CMD" {
        return Err(format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"));
    }
    let cmd: Vec<String> = if node.json || args.is_empty() {
        args.to_vec()
    } else {
        vec![args.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".to_owned());
    }
    let kind = if node.json { "CMD" } else { "CMD-SHELL" };
    let interval = |name: &str| -> Result<i64, String> {
        let v = flags.string(name);
        if v.is_empty() {
            return Ok(0);
        }
        let d = parse_go_duration(&v)?;
        if d != 0 && d < 1_000_000 {
            return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
        }
        Ok(d)
    };
    let retries = match flags.string("retries") {
        r if r.is_empty() => 0,
        r => {
            let n: i64 = r
                .parse::<i32>()
                .map_err(|_| format!("strconv.ParseInt: parsing \"{r}\": invalid syntax"))?
                .into();
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            n
        }
    };
    Ok(Health {
        test: std::iter::once(kind.to_owned()).chain(cmd).collect(),
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    })
}

pub(crate) fn parse_node(node: &Node) -> Result<Parsed, String> {
    let cmd = node.cmd.to_lowercase();
    let args = &node.args;
    let one = |name: &str| -> Result<String, String> {
        if args.len() != 1 {
            return Err(exactly_one(name));
        }
        Ok(args[0].clone())
    };
    let instruction = match cmd.as_str() {
        "from" => {
            let name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let n = args[2].to_lowercase();
                    if !stage_name_re().is_match(&n) {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            crate::lex::go_quote(&args[2])
                        ));
                    }
                    Some(n)
                }
                1 => None,
                _ => return Err("FROM requires either one or three arguments".to_owned()),
            };
            let flags = Flags::new(&node.flags)
                .declare("platform", Kind::String)
                .parse()?;
            let platform = Some(flags.string("platform")).filter(|p| !p.is_empty());
            return Ok(Parsed::From {
                base: args[0].clone(),
                name,
                platform,
            });
        }
        "env" => Instruction::Env(key_values(node, "ENV")?),
        "label" => Instruction::Label(key_values(node, "LABEL")?),
        "maintainer" => {
            let m = one("MAINTAINER")?;
            no_flags(node)?;
            Instruction::Maintainer(m)
        }
        "add" => Instruction::Add(copy_like(node, true)?),
        "copy" => Instruction::Copy(copy_like(node, false)?),
        "onbuild" => {
            let Some(trigger) = args.first() else {
                return Err(at_least_one("ONBUILD"));
            };
            no_flags(node)?;
            let t = trigger.trim().to_uppercase();
            match t.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_owned());
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{t} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            let mut expr = onbuild_re().replace(&node.original, "").into_owned();
            for h in &node.heredocs {
                expr.push('\n');
                expr.push_str(&h.content);
                expr.push_str(&h.name);
            }
            Instruction::Onbuild(expr)
        }
        "workdir" => {
            let p = one("WORKDIR")?;
            no_flags(node)?;
            Instruction::Workdir(p)
        }
        "run" => {
            let flags = Flags::new(&node.flags)
                .declare("mount", Kind::Strings)
                .declare("network", Kind::String)
                .declare("security", Kind::String)
                .declare("device", Kind::Strings)
                .parse()?;
            Instruction::Run(Run {
                cmd: shell_dependent(node, false),
                flags_used: flags.used(),
            })
        }
        "cmd" => {
            no_flags(node)?;
            Instruction::Cmd(shell_dependent(node, false))
        }
        "entrypoint" => {
            no_flags(node)?;
            Instruction::Entrypoint(shell_dependent(node, true))
        }
        "healthcheck" => Instruction::Healthcheck(healthcheck(node)?),
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node)?;
            let mut ports = args.clone();
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            let u = one("USER")?;
            no_flags(node)?;
            Instruction::User(u)
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node)?;
            let mut v = Vec::new();
            for a in args {
                let a = a.trim();
                if a.is_empty() {
                    return Err("VOLUME specified can not be an empty string".to_owned());
                }
                v.push(a.to_owned());
            }
            Instruction::Volume(v)
        }
        "stopsignal" => Instruction::StopSignal(one("STOPSIGNAL")?),
        "arg" => {
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut defs = Vec::new();
            for a in args {
                defs.push(match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".to_owned()),
                    Some((k, v)) => ArgDef {
                        key: k.to_owned(),
                        value: Some(v.to_owned()),
                    },
                    None => ArgDef {
                        key: a.clone(),
                        value: None,
                    },
                });
            }
            Instruction::Arg(defs)
        }
        "shell" => {
            no_flags(node)?;
            if args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".to_owned());
            }
            Instruction::Shell(args.clone())
        }
        _ => return Err(unknown(&node.cmd)),
    };
    Ok(Parsed::Command(instruction))
}
