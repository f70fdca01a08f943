//! No input panics the parser, the lexer or expansion (10,000 cases each).

use berth_dockerfile::{
    lex::{EnvList, Lexer},
    parse, parse_trigger,
};
use proptest::prelude::*;

/// Text made mostly of Dockerfile syntax, so that deep paths are reached.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM ".to_owned()),
        Just("RUN ".to_owned()),
        Just("COPY ".to_owned()),
        Just("ADD ".to_owned()),
        Just("ENV ".to_owned()),
        Just("ARG ".to_owned()),
        Just("LABEL ".to_owned()),
        Just("ONBUILD ".to_owned()),
        Just("HEALTHCHECK ".to_owned()),
        Just("SHELL ".to_owned()),
        Just("EXPOSE ".to_owned()),
        Just("VOLUME ".to_owned()),
        Just("WORKDIR ".to_owned()),
        Just("CMD ".to_owned()),
        Just("# escape=`\n".to_owned()),
        Just("# syntax=x\n".to_owned()),
        Just("--chown=".to_owned()),
        Just("--from=".to_owned()),
        Just("--interval=".to_owned()),
        Just("<<EOF".to_owned()),
        Just("<<-'EOF'".to_owned()),
        Just("\nEOF\n".to_owned()),
        Just("\\\n".to_owned()),
        Just("`\n".to_owned()),
        Just("[\"a\", 1]".to_owned()),
        Just("[\"x\"]".to_owned()),
        Just("${A:-".to_owned()),
        Just("${A/".to_owned()),
        Just("${A%%*".to_owned()),
        Just("$".to_owned()),
        Just("}".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("=".to_owned()),
        Just(" AS ".to_owned()),
        Just("\n".to_owned()),
        Just("\t".to_owned()),
        "[a-z0-9 ]{0,4}",
        // Any characters (cheaper to generate than a Unicode-class regex).
        prop::collection::vec(any::<char>(), 0..3).prop_map(String::from_iter),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn parsing_never_panics(text in dockerfile_text()) {
        if let Ok(df) = parse(&text) {
            let env = EnvList(vec!["A=1".to_owned(), "B=".to_owned()]);
            for stage in df.stages {
                for mut cmd in stage.commands {
                    let _ = cmd.instruction.expand(df.escape, &env);
                }
            }
        }
        let _ = parse_trigger(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in prop::collection::vec(any::<char>(), 0..200).prop_map(String::from_iter)) {
        let _ = parse(&text);
    }

    #[test]
    fn lexing_never_panics(word in "[-a-zA-Z0-9${}:+?#%/*\\\\'\" <]{0,40}", escape in prop_oneof![Just('\\'), Just('`')]) {
        let env = EnvList(vec!["A=x y".to_owned(), "B=".to_owned()]);
        let lx = Lexer::new(escape);
        let _ = lx.process_word(&word, &env);
        let _ = lx.process_words(&word, &env);
    }
}
