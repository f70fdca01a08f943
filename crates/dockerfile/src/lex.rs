//! Docker's shell-word lexer (buildkit's `shell.Lex`): quotes, escapes and `$VAR`, `${VAR}`,
//! `${VAR:-x}`, `${VAR:+x}`, `${VAR?x}`, `${VAR#pat}`, `${VAR%pat}` and `${VAR/a/b}`, as the
//! instructions that expand variables apply them. Every input either lexes or is an error: no
//! panic, no unbounded recursion (nesting is bounded by the input's length).

use regex::Regex;

/// Looks a variable up.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// An environment from `KEY=VALUE` strings; a later key overrides an earlier one.
#[derive(Debug, Clone, Default)]
pub struct EnvList(pub Vec<String>);

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            (k == name).then(|| v.to_owned())
        })
    }
}

struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

/// The lexer's options.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave unset variables as written.
    pub skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// The word with quotes removed and variables substituted (whitespace kept).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, String> {
        self.run(word, env).map(|(w, _)| w)
    }

    /// The words, split on unquoted whitespace, with quotes removed and variables substituted.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, String> {
        self.run(word, env).map(|(_, ws)| ws)
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), String> {
        let mut s = Scan {
            lx: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
        };
        s.stop_on(None, self.raw_escapes)
            .map_err(|e| format!("failed to process {}: {e}", go_quote(word)))
    }
}

/// Go's `%q` of a string (what Docker's error messages show).
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

struct Scan<'a> {
    lx: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
}

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' => Some(self.single_quote()?),
                '"' => Some(self.double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == self.lx.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('\'');
        if self.lx.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_owned(),
                    );
                }
                Some('\'') => {
                    if self.lx.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('"');
        if self.lx.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_owned(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lx.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lx.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lx.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(c);
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name)
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_owned()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_owned()),
            _ => {}
        }
        let name = self.name();
        let mut ch = self.next();
        // Go's scanner reports the end as a rune that prints as U+FFFD.
        let mut chs: String = ch.map_or_else(|| '\u{fffd}'.to_string(), String::from);
        match ch {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    chs.push(ch.unwrap_or('\u{fffd}'));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                if !matches!(ch, Some('+' | '-' | '?' | '#' | '%')) {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".to_owned());
                    }
                    Err(e) => return Err(e),
                };
                let value = self.lookup(&name);
                if self.lx.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                let unset = !set || (null_is_unset && value.is_empty());
                match ch {
                    Some('-') => Ok(if unset { word } else { value }),
                    Some('+') => Ok(if unset { String::new() } else { word }),
                    Some('?') => {
                        if !set {
                            let m = if word.is_empty() {
                                "is not allowed to be unset".to_owned()
                            } else {
                                word
                            };
                            return Err(format!("{name}: {m}"));
                        }
                        if null_is_unset && value.is_empty() {
                            let m = if word.is_empty() {
                                "is not allowed to be empty".to_owned()
                            } else {
                                word
                            };
                            return Err(format!("{name}: {m}"));
                        }
                        Ok(value)
                    }
                    _ => {
                        let c = ch.unwrap_or('#');
                        let (greedy, pat) = match word.strip_prefix(c) {
                            Some(p) => (true, p.to_owned()),
                            None => (false, word),
                        };
                        if c == '%' {
                            trim_suffix(&pat, &value, greedy)
                        } else {
                            trim_prefix(&pat, &value, greedy)
                        }
                    }
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".to_owned());
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".to_owned());
                    }
                    Err(e) => return Err(e),
                };
                let Some(value) = self.lookup(&name) else {
                    if self.lx.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let re = pattern_regex(&pattern, true, false)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(if all {
                    re.replace_all(&value, regex::NoExpand(&replacement))
                        .into_owned()
                } else {
                    re.replace(&value, regex::NoExpand(&replacement))
                        .into_owned()
                })
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_owned();
        }
        self.next();
        let mut out = "<<".to_owned();
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }
}

/// A shell pattern (`*`, `?`, `\x`) as a regex.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut out = String::new();
    if anchored {
        out.push('^');
    }
    let mut it = pattern.chars().peekable();
    while let Some(tok) = it.next() {
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(it.peek(), Some('}' | '/')) {
                    continue;
                }
                match it.next() {
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                    }
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\'".to_owned()),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = pattern_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_owned(),
        None => value.to_owned(),
    })
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    // Reverse the pattern, keeping `\x` pairs in order, and match it against the reversed value.
    let p: Vec<char> = pattern.chars().collect();
    let mut rev: Vec<char> = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == '\\' && i + 1 < p.len() {
            rev.push(p[i + 1]);
            rev.push('\\');
            i += 2;
        } else {
            rev.push(p[i]);
            i += 1;
        }
    }
    rev.reverse();
    let rp: String = rev.into_iter().collect();
    let rv: String = value.chars().rev().collect();
    let out = trim_prefix(&rp, &rv, greedy)?;
    Ok(out.chars().rev().collect())
}

/// Words as the heredoc detector sees them: quotes and escapes kept, unset variables kept.
pub(crate) fn raw_words(line: &str) -> Vec<String> {
    let lx = Lexer {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    lx.process_words(line, &NoEnv).unwrap_or_default()
}

/// A heredoc word's name, and whether its content is expanded (no quotes in the name).
pub(crate) fn heredoc_name(rest: &str) -> Result<Option<(String, bool)>, String> {
    let mut lx = Lexer {
        escape: '\\',
        raw_quotes: false,
        raw_escapes: false,
        skip_unset: true,
    };
    let words = lx.process_words(rest, &NoEnv)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lx.raw_quotes = true;
    let raw = lx.process_words(rest, &NoEnv)?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some((words[0].clone(), expand)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvList {
        EnvList(vec![
            "A=1".into(),
            "EMPTY=".into(),
            "P=/usr/local/bin".into(),
            "F=a.tar.gz".into(),
        ])
    }

    fn word(s: &str) -> Result<String, String> {
        Lexer::new('\\').process_word(s, &env())
    }

    #[test]
    fn substitutions_follow_docker() {
        assert_eq!(word("$A ${A} x$A-y").unwrap(), "1 1 x1-y");
        assert_eq!(
            word("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${A:-d}").unwrap(),
            "d d  1"
        );
        assert_eq!(
            word("${A:+yes} ${EMPTY:+yes} ${EMPTY+yes} ${UNSET+y}").unwrap(),
            "yes  yes "
        );
        assert_eq!(
            word("${F%.*} ${F%%.*} ${F#*.} ${F##*.}").unwrap(),
            "a.tar a tar.gz gz"
        );
        assert_eq!(
            word("${P/local/x} ${P//l/L}").unwrap(),
            "/usr/x/bin /usr/LocaL/bin"
        );
        assert_eq!(word("'$A' \"$A\" \\$A").unwrap(), "$A 1 $A");
        assert_eq!(word("\"a\\\"b\\c\"").unwrap(), "a\"b\\c");
        assert_eq!(word("$ ${A}$").unwrap(), "$ 1$");
        assert_eq!(
            word("${UNSET?must be set}").unwrap_err(),
            "failed to process \"${UNSET?must be set}\": UNSET: must be set"
        );
        assert!(
            word("${A:-x")
                .unwrap_err()
                .contains("syntax error: missing '}'")
        );
        assert!(
            word("${")
                .unwrap_err()
                .contains("syntax error: missing '}'")
        );
        assert!(word("${}").unwrap_err().contains("bad substitution"));
        assert!(word("'abc").unwrap_err().contains("matching single-quote"));
        assert!(word("\"abc").unwrap_err().contains("matching double-quote"));
        assert!(
            word("${A:%x}")
                .unwrap_err()
                .contains("unsupported modifier (:%)")
        );
    }

    #[test]
    fn words_split_on_unquoted_space() {
        let lx = Lexer::new('\\');
        assert_eq!(
            lx.process_words("a 'b c' \"d $A\" e\\ f", &env()).unwrap(),
            ["a", "b c", "d 1", "e f"]
        );
        // An expanded value with spaces splits.
        let e = EnvList(vec!["X=1 2".into()]);
        assert_eq!(lx.process_words("$X", &e).unwrap(), ["1", "2"]);
        // The backtick escape.
        assert_eq!(Lexer::new('`').process_word("a`$b", &env()).unwrap(), "a$b");
    }
}
