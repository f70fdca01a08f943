//! The line level of a Dockerfile (buildkit's `parser.Parse`): parser directives, comments,
//! line continuations and heredocs, and each instruction's arguments split the way its
//! instruction takes them. The result is one [`Node`] per instruction.

use std::sync::OnceLock;

use regex::Regex;

use crate::{
    ParseError,
    lex::{heredoc_name, raw_words},
    words::{extract_flags, parse_words},
};

/// A heredoc attached to an instruction (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The content is expanded (the name was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are removed.
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
    pub content: String,
}

/// One instruction as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// The instruction word as written (`from`, `COPY`).
    pub(crate) cmd: String,
    pub(crate) flags: Vec<String>,
    pub(crate) args: Vec<String>,
    /// The arguments were a JSON array.
    pub(crate) json: bool,
    /// The line, continuations joined, without heredoc bodies.
    pub(crate) original: String,
    pub(crate) heredocs: Vec<Heredoc>,
    pub(crate) start_line: usize,
    /// ONBUILD's trigger.
    pub(crate) sub: Option<Box<Node>>,
}

/// What the line level yields.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pub(crate) nodes: Vec<Node>,
    pub(crate) escape: char,
    pub(crate) syntax: Option<String>,
    pub(crate) warnings: Vec<String>,
}

struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
    syntax: Option<String>,
}

fn directive_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("a valid regex")
    })
}

fn heredoc_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(\d*)<<(-?)\s*([^<]*)$").expect("a valid regex"))
}

impl Directives {
    /// Whether `line` is a parser directive; records it.
    fn check(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let Some(m) = directive_re().captures(rest.trim_start()) else {
            self.done = true;
            return Ok(false);
        };
        let key = m[1].to_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        let value = m[2].to_owned();
        match key.as_str() {
            "escape" => match value.as_str() {
                "`" => self.escape = '`',
                "\\" => self.escape = '\\',
                _ => {
                    return Err(format!(
                        "invalid escape token '{value}' does not match ` or \\"
                    ));
                }
            },
            // The classic builder reads `syntax` and does nothing with it (no frontends).
            "syntax" => self.syntax = Some(value),
            _ => {}
        }
        Ok(true)
    }

    /// Removes a trailing continuation token; `true` when the line ends the instruction.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let e = self.escape;
        let trimmed = line.trim_end_matches([' ', '\t']);
        if let Some(before) = trimmed.strip_suffix(e) {
            // `\\` at the end is an escaped escape, not a continuation (unless the line
            // is the token alone).
            if before.is_empty() || !before.ends_with(e) {
                return (before.to_owned(), false);
            }
        }
        (line.to_owned(), true)
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Splits the text into lines that keep their `\n`.
fn scan_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

pub(crate) fn parse_lines(text: &str) -> Result<Lines, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = scan_lines(text);
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
        syntax: None,
    };
    let mut out = Lines::default();
    let mut current = 0usize;
    let mut i = 0usize;
    let err = |msg: String, line: usize| ParseError::plain(line, msg);
    while i < lines.len() {
        let raw = trim_newline(lines[i]);
        i += 1;
        let stripped = raw.trim_start();
        d.check(stripped).map_err(|e| err(e, current))?;
        let content = if is_comment(stripped) { "" } else { stripped };
        current += 1;
        let start = current;
        let (first, mut end) = d.trim_continuation(content);
        if end && first.is_empty() {
            continue;
        }
        let mut buf = first;
        let mut empty_continuation = false;
        while !end && i < lines.len() {
            let raw = trim_newline(lines[i]);
            i += 1;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if raw.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, e) = d.trim_continuation(raw);
            buf.push_str(&part);
            end = e;
        }
        if empty_continuation {
            out.warnings
                .push(format!("Empty continuation line found in: {buf}"));
        }
        let mut node = node_from_line(&buf, d.escape).map_err(|e| err(e, start))?;
        node.start_line = start;
        if can_contain_heredoc(&node) && buf.contains("<<") {
            for (name, expand, chomp, fd) in heredocs_of(&buf).map_err(|e| err(e, start))? {
                let mut content = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let line = lines[i];
                    i += 1;
                    current += 1;
                    let mut candidate = trim_newline(line);
                    if chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    content.push_str(line);
                }
                if !terminated {
                    return Err(err("unterminated heredoc".to_owned(), start));
                }
                node.heredocs.push(Heredoc {
                    name,
                    expand,
                    chomp,
                    fd,
                    content,
                });
            }
        }
        out.nodes.push(node);
    }
    if out.nodes.is_empty() {
        return Err(err("file with no instructions".to_owned(), current));
    }
    out.escape = d.escape;
    out.syntax = d.syntax;
    Ok(out)
}

fn can_contain_heredoc(node: &Node) -> bool {
    let n = match (&node.sub, node.cmd.eq_ignore_ascii_case("onbuild")) {
        (Some(sub), true) => sub,
        _ => node,
    };
    matches!(n.cmd.to_lowercase().as_str(), "add" | "copy" | "run") && !n.json
}

/// The heredocs a line opens: (name, expand, chomp, fd).
fn heredocs_of(line: &str) -> Result<Vec<(String, bool, bool, u32)>, String> {
    let mut out = Vec::new();
    for w in raw_words(line) {
        if let Some(h) = parse_heredoc(&w)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// A word that opens a heredoc (`<<EOF`, `<<-"EOF"`, `3<<EOF`).
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<(String, bool, bool, u32)>, String> {
    let Some(m) = heredoc_re().captures(word) else {
        return Ok(None);
    };
    let fd = m[1].parse::<u32>().unwrap_or(0);
    let chomp = &m[2] == "-";
    let rest = &m[3];
    if rest.is_empty() {
        return Ok(None);
    }
    Ok(heredoc_name(rest)?.map(|(name, expand)| (name, expand, chomp, fd)))
}

fn ws_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[\t\x0B\x0C\r ]+").expect("a valid regex"))
}

/// Splits a line into instruction, flags and arguments, as the instruction takes them.
pub(crate) fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    node_at_depth(line, escape, 0)
}

/// `depth` bounds ONBUILD's nesting: `ONBUILD ONBUILD ...` is refused by the instruction
/// level, so the line level needs only the first two words of it.
fn node_at_depth(line: &str, escape: char, depth: u8) -> Result<Node, String> {
    let trimmed = line.trim();
    let mut parts = ws_re().splitn(trimmed, 2);
    let cmd = parts.next().unwrap_or_default().to_owned();
    let (rest, flags) = match parts.next() {
        Some(r) => extract_flags(r, escape),
        None => (String::new(), Vec::new()),
    };
    let rest = rest.trim().to_owned();
    let mut node = Node {
        cmd: cmd.clone(),
        flags,
        original: line.to_owned(),
        ..Node::default()
    };
    match cmd.to_lowercase().as_str() {
        "add" | "copy" | "volume" => {
            (node.args, node.json) = maybe_json_to_list(&rest)?;
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            (node.args, node.json) = maybe_json(&rest)?;
        }
        "arg" => node.args = parse_words(&rest, escape),
        "env" => node.args = name_val(&rest, "ENV", escape)?,
        "label" => node.args = name_val(&rest, "LABEL", escape)?,
        "expose" | "from" => node.args = whitespace_split(&rest),
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args = vec![rest];
        }
        "healthcheck" => {
            let (typ, cmd) = rest
                .split_once(char::is_whitespace)
                .map_or((rest.as_str(), ""), |(t, c)| (t, c.trim_start()));
            if !typ.is_empty() {
                let (args, json) = maybe_json(cmd)?;
                node.args = std::iter::once(typ.to_owned()).chain(args).collect();
                node.json = json;
            }
        }
        "onbuild" if !rest.is_empty() && depth == 0 => {
            let sub = node_at_depth(&rest, escape, 1)?;
            node.args = std::iter::once(sub.cmd.clone())
                .chain(sub.args.iter().cloned())
                .collect();
            node.sub = Some(Box::new(sub));
        }
        _ => {}
    }
    Ok(node)
}

fn whitespace_split(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    ws_re().split(rest).map(str::to_owned).collect()
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// A JSON array of strings: `Ok(Some)`; not JSON: `Ok(None)`; JSON with non-strings: error.
fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRINGS.to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match json_array(rest)? {
        Some(v) => (v, true),
        None => (vec![rest.to_owned()], false),
    })
}

fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    Ok(match json_array(rest)? {
        Some(v) => (v, true),
        None => (whitespace_split(rest), false),
    })
}

/// ENV and LABEL: `k=v k2=v2` or the legacy `k v w` → triples (key, value, separator).
fn name_val(rest: &str, what: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let mut parts = ws_re().splitn(rest, 2);
        let k = parts.next().unwrap_or_default();
        let Some(v) = parts.next() else {
            return Err(format!("{what} must have two arguments"));
        };
        return Ok(vec![k.to_owned(), v.to_owned(), String::new()]);
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                crate::lex::go_quote(w)
            ));
        };
        out.extend([k.to_owned(), v.to_owned(), "=".to_owned()]);
    }
    Ok(out)
}
