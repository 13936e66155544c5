//! nats-rescue: parse, run, map the error to an exit code.

use clap::Parser;
use nats_rescue::cli::{Cli, Command};
use nats_rescue::error::Error;
use nats_rescue::runbook::Library;

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nats-rescue: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32, Error> {
    let g = &cli.global;
    let lib = Library::new(g.runbooks.clone());
    match &cli.command {
        Command::Runbooks(c) => nats_rescue::app::runbooks::dispatch(c, &lib, g.json),
        Command::Lab(c) => nats_rescue::lab::dispatch(c),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "nats-rescue", &mut std::io::stdout());
            Ok(0)
        }
        other => Err(Error::Usage(format!("`{}` is not yet available in this build", command_name(other)))),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Status => "status",
        Command::Diagnose => "diagnose",
        Command::Run(_) => "run",
        Command::Resume(_) => "resume",
        Command::Journal(_) => "journal",
        Command::Runbooks(_) => "runbooks",
        Command::Lab(_) => "lab",
        Command::Completions { .. } => "completions",
    }
}
