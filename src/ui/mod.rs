//! Everything the operator reads: settings resolved once from the command line
//! ([`Settings`]), the live view of a run ([`terminal`]), the status table and findings
//! ([`status`]), the outcome lines of `run`/`resume` ([`outcome`]), and stdout that
//! survives a closed pipe ([`out`]).

pub mod format;
pub mod outcome;
pub mod report;
pub mod status;
pub mod terminal;
pub mod timeline;

pub use terminal::TerminalReporter;

use crate::cli::GlobalOpts;
use std::io::{IsTerminal, Write};

/// How output looks, decided once from the flags, the environment and the terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Colour on stderr (a terminal, no `--no-color`, no `NO_COLOR`).
    pub color: bool,
    /// Colour on stdout (the status table), on the same conditions.
    pub color_stdout: bool,
    /// No progress text on stderr (`-q`, and `--json`, whose stdout is for machines).
    pub quiet: bool,
    pub verbose: bool,
    pub json: bool,
    /// Spinners (stderr is a terminal and not quiet).
    pub fancy: bool,
    /// Width the tables are laid out for.
    pub width: usize,
}

/// Width of tables when the terminal does not say (and the width snapshots use).
pub const DEFAULT_WIDTH: usize = 80;

impl Settings {
    pub fn resolve(g: &GlobalOpts) -> Settings {
        let no_color = g.no_color || std::env::var_os("NO_COLOR").is_some();
        let err_tty = std::io::stderr().is_terminal();
        let out_tty = std::io::stdout().is_terminal();
        let quiet = g.quiet || g.json;
        Settings {
            color: err_tty && !no_color,
            color_stdout: out_tty && !no_color,
            quiet,
            verbose: g.verbose,
            json: g.json,
            fancy: err_tty && !quiet,
            width: DEFAULT_WIDTH,
        }
    }

    /// Prints nothing (tests).
    pub fn silent() -> Settings {
        Settings {
            color: false,
            color_stdout: false,
            quiet: true,
            verbose: false,
            json: false,
            fancy: false,
            width: DEFAULT_WIDTH,
        }
    }

    /// Plain text, everything shown (buffered reporters in tests).
    pub fn plain() -> Settings {
        Settings {
            quiet: false,
            ..Settings::silent()
        }
    }
}

/// Writes to stdout. A reader that went away (`nats-rescue journal list | head`) ends the
/// process quietly with exit 0 instead of a panic: nobody is left to read the rest.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// [`out`] with a newline.
pub fn outln(text: &str) {
    out(&format!("{text}\n"));
}

/// Pretty JSON on stdout.
pub fn out_json(v: &serde_json::Value) {
    outln(&serde_json::to_string_pretty(v).unwrap_or_default());
}
