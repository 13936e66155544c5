use clap::Parser;
use nats_rescue::cli::Cli;

fn main() {
    let cli = Cli::parse();
    eprintln!("{cli:?}");
    std::process::exit(nats_rescue::exit_codes::USAGE);
}
