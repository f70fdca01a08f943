//! A Dockerfile parser with Docker's rules (the classic builder's, which uses buildkit's
//! `frontend/dockerfile/parser` and `instructions`): every instruction, the `escape` and
//! `syntax` parser directives, line continuations, comments, heredocs, and variable
//! substitution per instruction ([`Instruction::expand`]). Pure: no I/O. No input panics it.
//!
//! Errors read as dockerd's: line-level ones (`file with no instructions`, `unterminated
//! heredoc`) carry their message alone, and the builder wraps them (`failed to parse
//! Dockerfile: ...`); instruction-level ones read `dockerfile parse error on line 3: unknown
//! instruction: FOO`.

mod duration;
mod expand;
mod flags;
mod instructions;
pub mod lex;
mod lines;
mod words;

pub use instructions::{
    ArgDef, Copy, Health, InlineFile, Instruction, KeyValue, Run, ShellCommand,
};
pub use lines::Heredoc;

/// A parse error and the line it is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
    /// An instruction's error (`dockerfile parse error on line N: ...`), not a line-level one.
    pub instruction: bool,
}

impl ParseError {
    pub(crate) fn plain(line: usize, message: String) -> ParseError {
        ParseError {
            line,
            message,
            instruction: false,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.instruction {
            write!(
                f,
                "dockerfile parse error on line {}: {}",
                self.line, self.message
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Where it starts (1-based).
    pub line: usize,
    /// The instruction as written, continuations joined (what `Step N/M : ...` shows).
    pub code: String,
    pub instruction: Instruction,
}

/// `FROM base [AS name]` and the commands up to the next FROM.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Lowercase, as Docker keeps it.
    pub name: Option<String>,
    /// The base image as written (expanded with the meta ARGs when the stage starts).
    pub base: String,
    pub platform: Option<String>,
    pub code: String,
    pub line: usize,
    pub commands: Vec<Command>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The escape token (`\`, or `` ` `` by the `escape` directive).
    pub escape: char,
    /// The `syntax` directive; the classic builder has no frontends and ignores it.
    pub syntax: Option<String>,
    /// `[WARNING]:` lines the parser found (empty continuation lines).
    pub warnings: Vec<String>,
    /// ARGs before the first FROM: they apply to FROM lines.
    pub meta_args: Vec<Command>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// How many steps a build prints: meta ARGs, FROMs and commands.
    pub fn step_count(&self) -> usize {
        self.meta_args.len()
            + self
                .stages
                .iter()
                .map(|s| 1 + s.commands.len())
                .sum::<usize>()
    }

    /// The index of the stage named `name` (case-insensitive).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let name = name.to_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(name.as_str()))
    }
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines = lines::parse_lines(text)?;
    let mut df = Dockerfile {
        escape: lines.escape,
        syntax: lines.syntax,
        warnings: lines.warnings,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for node in &lines.nodes {
        let located = |message: String| ParseError {
            line: node.start_line,
            message,
            instruction: true,
        };
        let parsed = instructions::parse_node(node).map_err(located)?;
        let code = node.original.trim().to_owned();
        match parsed {
            instructions::Parsed::From {
                base,
                name,
                platform,
            } => df.stages.push(Stage {
                name,
                base,
                platform,
                code,
                line: node.start_line,
                commands: Vec::new(),
            }),
            instructions::Parsed::Command(instruction) => {
                let cmd = Command {
                    line: node.start_line,
                    code,
                    instruction,
                };
                match df.stages.last_mut() {
                    Some(stage) => stage.commands.push(cmd),
                    None if matches!(cmd.instruction, Instruction::Arg(_)) => {
                        df.meta_args.push(cmd);
                    }
                    None => {
                        return Err(ParseError::plain(
                            node.start_line,
                            "no build stage in current context".to_owned(),
                        ));
                    }
                }
            }
        }
    }
    Ok(df)
}

/// Parses one ONBUILD trigger (as stored in an image's `OnBuild`) into its command.
pub fn parse_trigger(text: &str) -> Result<Command, ParseError> {
    let lines = lines::parse_lines(text)?;
    let [node] = lines.nodes.as_slice() else {
        return Err(ParseError::plain(
            0,
            "onbuild trigger should be a single expression".to_owned(),
        ));
    };
    match instructions::parse_node(node).map_err(|message| ParseError {
        line: node.start_line,
        message,
        instruction: false,
    })? {
        instructions::Parsed::Command(instruction) => Ok(Command {
            line: node.start_line,
            code: node.original.trim().to_owned(),
            instruction,
        }),
        instructions::Parsed::From { .. } => Err(ParseError::plain(
            node.start_line,
            "FROM isn't allowed as an ONBUILD trigger".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests;
