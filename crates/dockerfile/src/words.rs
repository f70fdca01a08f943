//! Word splitting before expansion: the `--flag` words that lead an instruction's arguments,
//! and the quote-aware words of ENV, LABEL and ARG (quotes kept; expansion removes them).

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes the leading `--flag[=value]` words off `line`; returns the rest and the flags.
pub(crate) fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos >= chars.len();
        let ch = chars.get(pos).map(|c| c.1).unwrap_or_default();
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            let dashdash = ch == '-' && chars.get(pos + 1).map(|c| c.1) == Some('-');
            if !dashdash {
                return (line[chars[pos].0..].to_owned(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if buf != "--" && (blank_ok || !buf.is_empty()) {
                words.push(buf);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if buf == "--" {
                        return (line[chars[pos].0..].to_owned(), words);
                    }
                    if blank_ok || !buf.is_empty() {
                        words.push(std::mem::take(&mut buf));
                    }
                    buf.clear();
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                    pos += 1;
                    continue;
                }
                let mut c = ch;
                if ch == escape {
                    if pos + 1 == chars.len() {
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    c = chars[pos].1;
                }
                buf.push(c);
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                let mut c = ch;
                if ch == escape {
                    if pos + 1 == chars.len() {
                        phase = Phase::Word;
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    c = chars[pos].1;
                }
                buf.push(c);
            }
            Phase::Spaces => {}
        }
        pos += 1;
    }
    (String::new(), words)
}

/// Words split on whitespace outside quotes; quotes and escapes are kept.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut pos = 0;
    loop {
        let at_end = pos >= chars.len();
        let mut ch = chars.get(pos).copied().unwrap_or_default();
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !buf.is_empty() {
                words.push(buf);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                buf.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            buf.push(ch);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            buf.push(ch);
            ch = chars[pos];
        }
        buf.push(ch);
        pos += 1;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_lead_the_arguments() {
        let (rest, flags) = extract_flags("--from=build --chown=\"a b\" src dst", '\\');
        assert_eq!(flags, ["--from=build", "--chown=a b"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_flags("-- --not-a-flag x", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest.trim(), "--not-a-flag x");
        assert_eq!(
            extract_flags("--link", '\\'),
            (String::new(), vec!["--link".to_owned()])
        );
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"a="b c" d='e f' g\ h"#, '\\'),
            [r#"a="b c""#, "d='e f'", r"g\ h"]
        );
    }
}
