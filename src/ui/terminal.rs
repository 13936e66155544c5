//! The operator's view of a run: turns the engine's events into lines on stderr (stdout
//! stays clean for `--json`), with a spinner during waits when stderr is a terminal.

use super::Settings;
use crate::engine::{EngineEvent, Listener, UiEvent};
use crate::journal::Event;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::time::Duration;

/// Where the lines go: stderr, or a buffer (tests).
enum Out {
    Stderr,
    Buffer(Vec<u8>),
}

/// Renders a run on the terminal.
pub struct TerminalReporter {
    settings: Settings,
    spinner: Option<ProgressBar>,
    out: Out,
}

impl TerminalReporter {
    pub fn new(settings: Settings) -> Self {
        TerminalReporter {
            settings,
            spinner: None,
            out: Out::Stderr,
        }
    }

    /// A reporter that keeps its lines (tests: what the operator would have seen).
    pub fn buffered(settings: Settings) -> Self {
        TerminalReporter {
            settings: Settings {
                fancy: false,
                ..settings
            },
            spinner: None,
            out: Out::Buffer(Vec::new()),
        }
    }

    /// What a buffered reporter printed.
    pub fn text(&self) -> String {
        match &self.out {
            Out::Buffer(b) => String::from_utf8_lossy(b).into_owned(),
            Out::Stderr => String::new(),
        }
    }

    fn print(&mut self, s: &str) {
        if self.settings.quiet {
            return;
        }
        match &mut self.out {
            Out::Buffer(b) => {
                let _ = writeln!(b, "{s}");
            }
            Out::Stderr => match &self.spinner {
                Some(pb) => pb.suspend(|| eprintln!("{s}")),
                None => eprintln!("{s}"),
            },
        }
    }

    fn style(
        &self,
        s: &str,
        f: fn(console::StyledObject<&str>) -> console::StyledObject<&str>,
    ) -> String {
        if self.settings.color {
            f(console::style(s)).force_styling(true).to_string()
        } else {
            s.to_string()
        }
    }

    /// A line of its own (headers and the closing lines of `run`).
    pub fn line(&mut self, text: &str) {
        self.print(text);
    }

    pub fn header(&mut self, text: &str) {
        let t = self.style(text, |s| s.bold());
        self.print(&t);
    }

    fn note(&mut self, text: &str) {
        for l in text.lines() {
            self.print(&format!("  {l}"));
        }
    }

    fn mark(
        &mut self,
        mark: &str,
        f: fn(console::StyledObject<&str>) -> console::StyledObject<&str>,
        text: &str,
    ) {
        let m = self.style(mark, f);
        self.print(&format!("  {m} {text}"));
    }

    fn journal_event(&mut self, ev: &Event) {
        match ev {
            Event::Finding {
                confidence,
                summary,
                evidence,
                ..
            } => {
                self.mark(
                    "!",
                    |s| s.yellow().bold(),
                    &format!("finding ({confidence}): {summary}"),
                );
                for e in evidence {
                    self.note(&format!("  - {e}"));
                }
            }
            Event::BackupMade {
                node,
                path,
                size,
                sha256,
                ..
            } => {
                let short: String = sha256.chars().take(12).collect();
                self.mark(
                    "✓",
                    |s| s.green().bold(),
                    &format!("{node}: backup {path} ({size} bytes, sha256 {short})"),
                );
            }
            _ => {}
        }
    }

    fn ui_event(&mut self, ev: &UiEvent) {
        match ev {
            UiEvent::StepHeader { kind, id, title } => {
                let t = title
                    .as_ref()
                    .map(|t| format!(" — {t}"))
                    .unwrap_or_default();
                let k = self.style(&format!("[{}]", kind.as_str()), |s| s.cyan());
                let i = self.style(id, |s| s.bold());
                self.print(&format!("\n{k} {i}{t}"));
            }
            UiEvent::Skipped { step, reason } => {
                if self.settings.verbose {
                    self.print(&format!("  skip {step}: {reason}"));
                }
            }
            UiEvent::Note(t) => self.note(t),
            UiEvent::Recommendation(t) => self.note(&format!("→ {t}")),
            UiEvent::Warn(t) => self.mark("!", |s| s.yellow().bold(), t),
            UiEvent::Good(t) => self.mark("✓", |s| s.green().bold(), t),
            UiEvent::Bad(t) => self.mark("✗", |s| s.red().bold(), t),
            UiEvent::Command {
                node,
                command,
                mutating,
                rehearsal,
            } => {
                let tag = match (mutating, rehearsal) {
                    (true, true) => self.style("WOULD RUN (mutating, not sent)", |s| s.yellow()),
                    (true, false) => self.style("run (mutating)", |s| s.yellow()),
                    (false, _) => self.style("run (read-only)", |s| s.dim()),
                };
                if *mutating || self.settings.verbose || *rehearsal {
                    self.print(&format!("  {node}: {tag}: {command}"));
                }
            }
            UiEvent::Result {
                node,
                ok,
                mutating,
                summary,
            } => {
                if !ok {
                    self.mark("✗", |s| s.red().bold(), &format!("{node}: {summary}"));
                } else if self.settings.verbose || *mutating {
                    self.mark("✓", |s| s.green().bold(), &format!("{node}: {summary}"));
                }
            }
            UiEvent::WaitStart { what, timeout } => self.wait_start(what, *timeout),
            UiEvent::WaitProgress(detail) => {
                if let Some(pb) = &self.spinner {
                    pb.set_message(detail.clone());
                }
            }
            UiEvent::WaitEnd => {
                if let Some(pb) = self.spinner.take() {
                    pb.finish_and_clear();
                }
            }
        }
    }

    fn wait_start(&mut self, what: &str, timeout: Duration) {
        let msg = format!(
            "waiting up to {} for {what}",
            crate::duration::format(timeout)
        );
        if !self.settings.fancy || !matches!(self.out, Out::Stderr) {
            self.note(&msg);
            return;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(msg);
        pb.enable_steady_tick(Duration::from_millis(120));
        self.spinner = Some(pb);
    }
}

impl Listener for TerminalReporter {
    fn on_event(&mut self, ev: &EngineEvent) -> Result<(), String> {
        match ev {
            EngineEvent::Journal(j) => self.journal_event(j),
            EngineEvent::Ui(u) => self.ui_event(u),
        }
        Ok(())
    }
}

impl Drop for TerminalReporter {
    fn drop(&mut self) {
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
        }
    }
}
