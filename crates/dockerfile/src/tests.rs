//! Known dockerd behaviours.

use super::*;
use crate::lex::EnvList;

fn instrs(text: &str) -> Vec<Instruction> {
    parse(text)
        .unwrap()
        .stages
        .remove(0)
        .commands
        .into_iter()
        .map(|c| c.instruction)
        .collect()
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn stages_and_meta_args() {
    let df = parse(
        "# syntax=docker/dockerfile:1\nARG V=1\nFROM --platform=linux/amd64 busybox:$V AS Build\nRUN echo\nfrom scratch\nCOPY --from=build /a /b\n",
    )
    .unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.meta_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(df.stages[0].base, "busybox:$V");
    assert_eq!(
        df.stages[0].code,
        "FROM --platform=linux/amd64 busybox:$V AS Build"
    );
    assert_eq!(df.stages[1].code, "from scratch");
    assert_eq!(df.step_count(), 5);
    assert_eq!(df.stage_index("BUILD"), Some(0));
    let Instruction::Copy(c) = &df.stages[1].commands[0].instruction else {
        panic!()
    };
    assert_eq!((c.from.as_str(), c.dest.as_str()), ("build", "/b"));
}

#[test]
fn errors_name_the_line() {
    assert_eq!(
        err("FROM busybox\n\nFOOBAR bar\n"),
        "dockerfile parse error on line 3: unknown instruction: FOOBAR"
    );
    // buildkit's suggestion: within two edits of an instruction.
    assert_eq!(
        err("FROM busybox\nfoo bar\n"),
        "dockerfile parse error on line 2: unknown instruction: foo (did you mean from?)"
    );
    assert_eq!(
        err("FROM busybox\nCOPPY a b\n"),
        "dockerfile parse error on line 2: unknown instruction: COPPY (did you mean COPY?)"
    );
    assert_eq!(
        err("FROM busybox\nworkdir\n"),
        "dockerfile parse error on line 2: WORKDIR requires exactly one argument"
    );
    assert_eq!(
        err("FROM a b\n"),
        "dockerfile parse error on line 1: FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS 1x\n"),
        "dockerfile parse error on line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM a\nCOPY x\n"),
        "dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(
        err("FROM a\nCOPY --foo=1 x y\n"),
        "dockerfile parse error on line 2: unknown flag: foo"
    );
    assert_eq!(
        err("FROM a\nCOPY --chown x y\n"),
        "dockerfile parse error on line 2: missing a value on flag: chown"
    );
    assert_eq!(
        err("FROM a\nONBUILD ONBUILD RUN x\n"),
        "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    let deep = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(100_000));
    assert_eq!(
        err(&deep),
        "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("FROM a\nONBUILD FROM x\n"),
        "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM a\nSHELL /bin/sh -c\n"),
        "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK FOO x\n"),
        "dockerfile parse error on line 2: Unknown type \"FOO\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --interval=1us CMD x\n"),
        "dockerfile parse error on line 2: Interval \"interval\" cannot be less than 1ms"
    );
    // Line-level errors carry the message alone (the builder adds "failed to parse").
    assert_eq!(err("\n# only a comment\n"), "file with no instructions");
    assert_eq!(err("FROM a\nRUN <<EOF\nno end\n"), "unterminated heredoc");
    assert_eq!(err("ENV A=1\n"), "no build stage in current context");
    assert_eq!(err("FROM a\nENV A\n"), "ENV must have two arguments");
    assert_eq!(
        err("FROM a\nCMD [1]\n"),
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        err("# escape=x\nFROM a\n"),
        "invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(
        err("# escape=`\n# escape=`\nFROM a\n"),
        "only one escape parser directive can be used"
    );
}

#[test]
fn continuations_comments_and_escape_directive() {
    let df = parse("FROM a\nRUN echo a \\\n  # a comment\n\n  b\nLABEL x=1\n").unwrap();
    assert_eq!(df.stages[0].commands[0].code, "RUN echo a   b");
    assert_eq!(df.stages[0].commands[1].line, 6);
    assert_eq!(df.warnings.len(), 1);
    // A trailing escaped escape is not a continuation.
    let df = parse("FROM a\nRUN echo \\\\\nLABEL x=1\n").unwrap();
    assert_eq!(df.stages[0].commands.len(), 2);
    // The backtick escape, and `\` is then an ordinary character.
    let df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && x\n").unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.stages[0].commands[0].code, "RUN dir c:\\   && x");
    // A directive after an instruction is a comment.
    let df = parse("FROM a\n# escape=`\nRUN x \\\n y\n").unwrap();
    assert_eq!(df.escape, '\\');
    // CRLF and a byte-order mark.
    let df = parse("\u{feff}FROM a\r\nENV A=1\r\n").unwrap();
    assert_eq!(df.stages[0].commands.len(), 1);
}

#[test]
fn env_and_label_forms() {
    let mut i =
        instrs("FROM a\nENV A=1 B=\"two words\" C=${A}x\nENV D some value\nLABEL \"k\"='v' x=y\n");
    let env = EnvList(vec!["A=1".into()]);
    for x in &mut i {
        x.expand('\\', &env).unwrap();
    }
    let Instruction::Env(e) = &i[0] else { panic!() };
    let got: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(got, ["A=1", "B=two words", "C=1x"]);
    let Instruction::Env(e) = &i[1] else { panic!() };
    assert_eq!(
        (e[0].to_string(), e[0].no_delim),
        ("D=some value".to_owned(), true)
    );
    let Instruction::Label(l) = &i[2] else {
        panic!()
    };
    assert_eq!(l[0].to_string(), "k=v");
    assert_eq!(
        err("FROM a\nENV A=1 B\n"),
        "Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
}

#[test]
fn command_forms() {
    let i = instrs(
        "FROM a\nRUN [\"echo\", \"hi\"]\nRUN echo $HOME\nCMD echo x\nENTRYPOINT [\"/bin/x\"]\nRUN --network=none --mount=type=cache,target=/x true\nSHELL [\"/bin/bash\", \"-c\"]\nCMD [\"a\" \n",
    );
    assert_eq!(
        i[0],
        Instruction::Run(Run {
            cmd: ShellCommand {
                args: vec!["echo".into(), "hi".into()],
                prepend_shell: false,
                files: vec![]
            },
            flags_used: vec![]
        })
    );
    let Instruction::Run(r) = &i[1] else { panic!() };
    assert_eq!(r.cmd.args, ["echo $HOME"]);
    assert!(r.cmd.prepend_shell);
    let Instruction::Run(r) = &i[4] else { panic!() };
    assert_eq!(r.flags_used, ["network", "mount"]);
    assert_eq!(
        i[5],
        Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    // Not valid JSON: the shell form, as written.
    let Instruction::Cmd(c) = &i[6] else { panic!() };
    assert_eq!(
        (c.args.as_slice(), c.prepend_shell),
        (&["[\"a\"".to_owned()][..], true)
    );
}

#[test]
fn copy_flags_and_heredocs() {
    let i = instrs(
        "FROM a\nCOPY --chown=1:2 --chmod=644 --link a b* /dst/\nCOPY <<EOF <<-\"TWO\" /x/\nhello $A\nEOF\n\tindented\n\tTWO\nADD --checksum=sha256:x http://h/f /f\nRUN <<EOF\necho hi\nEOF\n",
    );
    let Instruction::Copy(c) = &i[0] else {
        panic!()
    };
    assert_eq!(
        (c.chown.as_str(), c.chmod.as_str(), c.link),
        ("1:2", "644", true)
    );
    assert_eq!(c.sources, ["a", "b*"]);
    let Instruction::Copy(c) = &i[1] else {
        panic!()
    };
    assert_eq!(c.sources, Vec::<String>::new());
    assert_eq!(
        c.contents,
        [
            InlineFile {
                path: "EOF".into(),
                data: "hello $A\n".into(),
                expand: true
            },
            InlineFile {
                path: "TWO".into(),
                data: "indented\n".into(),
                expand: false
            }
        ]
    );
    let Instruction::Add(a) = &i[2] else { panic!() };
    assert_eq!(a.unsupported_flags, ["checksum"]);
    let Instruction::Run(r) = &i[3] else { panic!() };
    assert_eq!(r.cmd.files[0].content, "echo hi\n");
    assert_eq!(
        err("FROM a\nCOPY a <<EOF\nx\nEOF\n"),
        "dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn metadata_instructions() {
    let i = instrs(
        "FROM a\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f x\nHEALTHCHECK NONE\nEXPOSE 80 53/udp\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nARG X Y=2\nONBUILD RUN echo hi\nSTOPSIGNAL SIGTERM\nUSER nobody:nogroup\nWORKDIR /app\nMAINTAINER me\n",
    );
    assert_eq!(
        i[0],
        Instruction::Healthcheck(Health {
            test: vec!["CMD-SHELL".into(), "curl -f x".into()],
            interval: 5_000_000_000,
            retries: 3,
            ..Health::default()
        })
    );
    assert_eq!(
        i[1],
        Instruction::Healthcheck(Health {
            test: vec!["NONE".into()],
            ..Health::default()
        })
    );
    assert_eq!(
        i[2],
        Instruction::Expose(vec!["53/udp".into(), "80".into()])
    );
    assert_eq!(i[3], Instruction::Volume(vec!["/a".into(), "/b".into()]));
    assert_eq!(i[4], Instruction::Volume(vec!["/c".into(), "/d".into()]));
    assert_eq!(
        i[5],
        Instruction::Arg(vec![
            ArgDef {
                key: "X".into(),
                value: None
            },
            ArgDef {
                key: "Y".into(),
                value: Some("2".into())
            }
        ])
    );
    assert_eq!(i[6], Instruction::Onbuild("RUN echo hi".into()));
    assert_eq!(i[10], Instruction::Maintainer("me".into()));
    let t = parse_trigger("RUN echo hi").unwrap();
    assert_eq!(t.instruction.name(), "RUN");
}

#[test]
fn expansion_is_per_instruction() {
    let env = EnvList(vec!["D=/data".into(), "P=8080".into(), "U=app".into()]);
    let mut i = instrs(
        "FROM a\nWORKDIR $D/x\nCMD echo $D\nEXPOSE $P ${P}/udp\nUSER ${U:-root}\nCOPY --chown=$U ${D}/a '$D'\n",
    );
    for x in &mut i {
        x.expand('\\', &env).unwrap();
    }
    assert_eq!(i[0], Instruction::Workdir("/data/x".into()));
    let Instruction::Cmd(c) = &i[1] else { panic!() };
    assert_eq!(c.args, ["echo $D"]);
    assert_eq!(
        i[2],
        Instruction::Expose(vec!["8080".into(), "8080/udp".into()])
    );
    assert_eq!(i[3], Instruction::User("app".into()));
    let Instruction::Copy(c) = &i[4] else {
        panic!()
    };
    assert_eq!(
        (c.chown.as_str(), c.sources[0].as_str(), c.dest.as_str()),
        ("app", "/data/a", "$D")
    );
    let mut bad = Instruction::Workdir("${X".into());
    assert_eq!(
        bad.expand('\\', &env).unwrap_err(),
        "failed to process \"${X\": unsupported modifier (\u{fffd}) in substitution"
    );
}
