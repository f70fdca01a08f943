//! Variable substitution per instruction, as the classic builder applies it before it
//! dispatches one: ENV, LABEL, ADD, COPY (sources, destination, `--chown`, `--chmod`),
//! WORKDIR, USER, VOLUME, STOPSIGNAL, ARG and EXPOSE expand; RUN, CMD, ENTRYPOINT, SHELL,
//! HEALTHCHECK, ONBUILD and MAINTAINER do not (their words reach the shell or the config as
//! written). Quotes are removed by the same pass.

use crate::{
    Instruction,
    lex::{Env, Lexer},
};

fn word(lx: &Lexer, env: &dyn Env, s: &mut String) -> Result<(), String> {
    *s = lx.process_word(s, env)?;
    Ok(())
}

impl Instruction {
    /// Substitutes variables from `env` in place; the error is the lexer's
    /// (`failed to process "${A": syntax error: missing '}'`).
    pub fn expand(&mut self, escape: char, env: &dyn Env) -> Result<(), String> {
        let lx = Lexer::new(escape);
        match self {
            Instruction::Env(kvs) | Instruction::Label(kvs) => {
                for kv in kvs {
                    word(&lx, env, &mut kv.key)?;
                    word(&lx, env, &mut kv.value)?;
                }
            }
            Instruction::Add(c) | Instruction::Copy(c) => {
                word(&lx, env, &mut c.chown)?;
                word(&lx, env, &mut c.chmod)?;
                for s in &mut c.sources {
                    word(&lx, env, s)?;
                }
                word(&lx, env, &mut c.dest)?;
            }
            Instruction::Workdir(s) | Instruction::User(s) | Instruction::StopSignal(s) => {
                word(&lx, env, s)?;
            }
            Instruction::Volume(v) => {
                for s in v {
                    word(&lx, env, s)?;
                }
            }
            Instruction::Arg(defs) => {
                for d in defs {
                    word(&lx, env, &mut d.key)?;
                    if let Some(v) = &mut d.value {
                        word(&lx, env, v)?;
                    }
                }
            }
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports.iter() {
                    out.extend(lx.process_words(p, env)?);
                }
                *ports = out;
            }
            Instruction::Maintainer(_)
            | Instruction::Onbuild(_)
            | Instruction::Run(_)
            | Instruction::Cmd(_)
            | Instruction::Entrypoint(_)
            | Instruction::Healthcheck(_)
            | Instruction::Shell(_) => {}
        }
        Ok(())
    }
}
