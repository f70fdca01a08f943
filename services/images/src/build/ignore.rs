//! `.dockerignore` with Docker's rules (moby's `patternmatcher` and `ignorefile`): one pattern
//! a line, `#` comments, `!` exceptions (the last matching pattern wins), a leading `/`
//! ignored, `*` and `?` within a path element, `**` across elements, and a pattern that matches
//! a directory excluding everything under it.

use regex::Regex;

struct Pattern {
    re: Regex,
    exclusion: bool,
}

/// The patterns of one `.dockerignore`.
pub(crate) struct Ignore {
    patterns: Vec<Pattern>,
}

/// `filepath.Clean` for `/`-separated relative paths.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 1;
                    while chars.get(i + 1) == Some(&'*') {
                        i += 1;
                    }
                    if chars.get(i + 1) == Some(&'/') {
                        // `**/` matches zero or more directories.
                        i += 1;
                        re.push_str("(.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                } else {
                    re.push_str("[^/]*");
                }
            }
            '?' => re.push_str("[^/]"),
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(n) => re.push_str(&regex::escape(&n.to_string())),
                    None => return Err("bad escape at the end of the pattern".to_owned()),
                }
            }
            '[' => {
                // A character class, kept as written up to its `]`.
                let end = chars[i..].iter().position(|&x| x == ']').map(|p| p + i);
                match end {
                    Some(e) if e > i + 1 => {
                        let mut class: String = chars[i + 1..e].iter().collect();
                        if let Some(rest) = class.strip_prefix('!') {
                            class = format!("^{rest}");
                        }
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                        re.push(']');
                        i = e;
                    }
                    _ => return Err("syntax error in pattern".to_owned()),
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

impl Ignore {
    /// Reads `.dockerignore` text. A pattern that does not compile is an error naming it.
    pub(crate) fn parse(text: &str) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
            }
            let mut p = clean(p);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
            let re = compile(&p)
                .map_err(|e| format!("error reading .dockerignore: invalid pattern {p:?}: {e}"))?;
            patterns.push(Pattern { re, exclusion });
        }
        Ok(Ignore { patterns })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative, `/`-separated) is excluded: the last pattern that matches it
    /// or one of its parent directories decides.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = match path.rsplit_once('/') {
            Some((dir, _)) => dir.split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            let mut hit = p.re.is_match(&path);
            if !hit {
                hit = (1..=parents.len()).any(|n| p.re.is_match(&parents[..n].join("/")));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether an exception (`!`) could bring back something under `dir`.
    pub(crate) fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_pattern_rules() {
        let i = Ignore::parse(
            "# comment\n*.log\n!keep.log\n/build\n**/tmp\ndocs/**/*.md\n!docs/README.md\n  secret?  \n",
        )
        .unwrap();
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("keep.log"));
        assert!(!i.excludes("sub/a.log"), "`*` stays within one element");
        assert!(
            i.excludes("build/out/x"),
            "a directory excludes what is under it"
        );
        assert!(i.excludes("tmp") && i.excludes("a/b/tmp/c"));
        assert!(i.excludes("docs/a/b/x.md") && i.excludes("docs/x.md"));
        assert!(!i.excludes("docs/README.md"));
        assert!(i.excludes("secret1") && !i.excludes("secret12"));
        assert!(!i.excludes("Dockerfile"));
        assert!(i.has_exceptions());
        let j = Ignore::parse("*\n!src\n").unwrap();
        assert!(j.excludes("x") && !j.excludes("src/a/b"));
        assert!(Ignore::parse("a\\").is_err());
        assert_eq!(clean("./a/../b//c/"), "b/c");
    }
}
