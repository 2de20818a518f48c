//! `holdfast`: the Holdfast command-line tool.

#![forbid(unsafe_code)]

mod agent_state;
mod cli;
mod commands;
mod error;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command, DpopCommand, JwkCommand, KeyCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let agent_dir = cli.agent_dir.as_deref();
    let result = match cli.command {
        Command::Key(KeyCommand::Generate(args)) => commands::key::generate(&args),
        Command::Jwk(JwkCommand::Thumbprint { input }) => commands::jwk::thumbprint(&input),
        Command::Dpop(DpopCommand::Sign(args)) => commands::dpop::sign(&args),
        Command::Dpop(DpopCommand::Inspect { proof }) => commands::dpop::inspect(&proof),
        Command::Dpop(DpopCommand::Verify(args)) => commands::dpop::verify(&args),
        Command::Har(cli::HarCommand::Scrub(args)) => commands::har::scrub(&args),
        Command::Enroll(args) => commands::enroll::enroll(&args, agent_dir),
        Command::Token(args) => commands::token::token(&args, agent_dir),
        Command::Request(args) => commands::request::request(&args, agent_dir),
        Command::Status(args) => commands::status::status(&args, agent_dir),
        Command::Admin(args) => commands::admin::run(&args, agent_dir),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("holdfast: {err}");
            err.exit_code()
        }
    }
}
