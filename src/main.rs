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
        Command::Inventory(c) => nats_rescue::app::inventory_init::dispatch(g, c),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "nats-rescue", &mut std::io::stdout());
            Ok(0)
        }
        Command::Status(a) => nats_rescue::app::status::status(g, &lib, a),
        Command::Diagnose(a) => nats_rescue::app::status::diagnose(g, &lib, a),
        Command::Capture(a) => nats_rescue::app::capture::capture(g, a),
        Command::Generate(c) => nats_rescue::app::generate::dispatch(c),
        Command::Run(a) => nats_rescue::app::run::run(g, &lib, a),
        Command::Resume(a) => nats_rescue::app::run::resume(g, &lib, a),
        Command::Journal(c) => nats_rescue::app::journal::dispatch(g, c),
    }
}
