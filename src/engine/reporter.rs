//! What the operator sees while a runbook runs. Human text goes to stderr (stdout stays
//! clean for `--json`); spinners and bars only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Owns the terminal's stderr for the run.
pub struct Reporter {
    pub quiet: bool,
    pub verbose: bool,
    pub color: bool,
    fancy: bool,
    spinner: Mutex<Option<ProgressBar>>,
}

impl Reporter {
    pub fn new(quiet: bool, verbose: bool, no_color: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let color = tty && !no_color && std::env::var_os("NO_COLOR").is_none();
        if !color {
            console::set_colors_enabled_stderr(false);
        }
        Reporter {
            quiet,
            verbose,
            color,
            fancy: tty && !quiet,
            spinner: Mutex::new(None),
        }
    }

    /// A reporter that prints nothing (tests, `diagnose --json`).
    pub fn silent() -> Self {
        Reporter {
            quiet: true,
            verbose: false,
            color: false,
            fancy: false,
            spinner: Mutex::new(None),
        }
    }

    fn print(&self, s: &str) {
        if self.quiet {
            return;
        }
        let guard = self.spinner.lock().ok();
        match guard.as_ref().and_then(|g| g.as_ref()) {
            Some(pb) => pb.suspend(|| eprintln!("{s}")),
            None => eprintln!("{s}"),
        }
    }

    fn style(
        &self,
        s: &str,
        f: impl Fn(console::StyledObject<&str>) -> console::StyledObject<&str>,
    ) -> String {
        if self.color {
            f(console::style(s)).to_string()
        } else {
            s.to_string()
        }
    }

    pub fn header(&self, text: &str) {
        self.print(&self.style(text, |s| s.bold()));
    }

    pub fn step(&self, kind: &str, id: &str, title: Option<&str>) {
        let t = title.map(|t| format!(" — {t}")).unwrap_or_default();
        self.print(&format!(
            "\n{} {}{}",
            self.style(&format!("[{kind}]"), |s| s.cyan()),
            self.style(id, |s| s.bold()),
            t
        ));
    }

    pub fn skipped(&self, id: &str, reason: &str) {
        if self.verbose {
            self.print(&format!("  skip {id}: {reason}"));
        }
    }

    pub fn note(&self, text: &str) {
        for l in text.lines() {
            self.print(&format!("  {l}"));
        }
    }

    pub fn warn(&self, text: &str) {
        self.print(&format!(
            "  {} {text}",
            self.style("!", |s| s.yellow().bold())
        ));
    }

    pub fn good(&self, text: &str) {
        self.print(&format!(
            "  {} {text}",
            self.style("✓", |s| s.green().bold())
        ));
    }

    pub fn bad(&self, text: &str) {
        self.print(&format!("  {} {text}", self.style("✗", |s| s.red().bold())));
    }

    pub fn command(&self, node: &str, command: &str, mutating: bool, rehearsal: bool) {
        let tag = match (mutating, rehearsal) {
            (true, true) => self.style("WOULD RUN (mutating, not sent)", |s| s.yellow()),
            (true, false) => self.style("run (mutating)", |s| s.yellow()),
            (false, _) => self.style("run (read-only)", |s| s.dim()),
        };
        if mutating || self.verbose || rehearsal {
            self.print(&format!("  {node}: {tag}: {command}"));
        }
    }

    pub fn result(&self, node: &str, ok: bool, mutating: bool, summary: &str) {
        if ok {
            if self.verbose || mutating {
                self.good(&format!("{node}: {summary}"));
            }
        } else {
            self.bad(&format!("{node}: {summary}"));
        }
    }

    /// Starts a spinner for a wait (`what`, bounded by `timeout`).
    pub fn wait_start(&self, what: &str, timeout: Duration) {
        if !self.fancy {
            self.print(&format!(
                "  waiting up to {} for {what}",
                crate::duration::format(timeout)
            ));
            return;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(format!(
            "waiting up to {} for {what}",
            crate::duration::format(timeout)
        ));
        pb.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut g) = self.spinner.lock() {
            *g = Some(pb);
        }
    }

    pub fn wait_update(&self, detail: &str) {
        if let Ok(g) = self.spinner.lock() {
            if let Some(pb) = g.as_ref() {
                pb.set_message(detail.to_string());
            }
        }
    }

    pub fn wait_end(&self) {
        if let Ok(mut g) = self.spinner.lock() {
            if let Some(pb) = g.take() {
                pb.finish_and_clear();
            }
        }
    }

    /// Runs `f` with any spinner hidden (prompts).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        let g = self.spinner.lock().ok();
        match g.as_ref().and_then(|g| g.as_ref()) {
            Some(pb) => pb.suspend(f),
            None => f(),
        }
    }
}
