//! Asking the operator. Whether to ask, and what counts as consent, is a pure decision
//! (`decide`), unit-tested; only `TerminalPrompter` touches the terminal.

use std::io::IsTerminal;

/// What a confirmation needs.
#[derive(Debug, Clone)]
pub struct ConfirmRequest {
    pub step: String,
    pub question: String,
    /// Lines shown before the question: facts, findings, exact commands, blast radius.
    pub details: Vec<String>,
    pub destructive: bool,
    /// Typed to approve a destructive step.
    pub cluster: String,
}

/// The operator's answer, and how it was given (journaled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Approved {
        how: String,
    },
    Declined {
        how: String,
    },
    /// No decision could be had; the message names the flag that would approve.
    Unavailable {
        reason: String,
    },
}

/// How an in-doubt action (intent without result, outcome unknown) is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDoubtChoice {
    Rerun,
    MarkDone,
    Abort,
}

/// Approval flags from the command line.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    pub yes: bool,
    pub confirm_destructive: Option<String>,
}

/// What to do about one confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Ask on the terminal.
    Ask,
    /// Approved by a flag.
    Approve { how: String },
    /// Refuse: no terminal and no flag (exit 4), or a flag that does not match.
    Refuse { reason: String },
}

/// The pure decision. Flags win over the terminal (scripts are explicit); without flags we
/// ask only when both stdin and stderr are terminals; end of input is never consent.
pub fn decide(
    interactive: bool,
    approvals: &Approvals,
    destructive: bool,
    cluster: &str,
) -> Policy {
    if destructive {
        match &approvals.confirm_destructive {
            Some(c) if c == cluster => {
                return Policy::Approve { how: "--confirm-destructive".into() };
            }
            Some(c) => {
                return Policy::Refuse {
                    reason: format!(
                        "--confirm-destructive {c:?} does not match the inventory's cluster name {cluster:?}; refusing the destructive step"
                    ),
                }
            }
            None => {}
        }
        if interactive {
            return Policy::Ask;
        }
        let hint = if approvals.yes {
            " (--yes does not approve destructive steps)"
        } else {
            ""
        };
        return Policy::Refuse {
            reason: format!(
                "this destructive step needs approval and there is no terminal to ask: pass --confirm-destructive {cluster}{hint}"
            ),
        };
    }
    if approvals.yes || approvals.confirm_destructive.as_deref() == Some(cluster) {
        return Policy::Approve {
            how: "--yes".into(),
        };
    }
    if interactive {
        return Policy::Ask;
    }
    Policy::Refuse {
        reason:
            "this step needs approval and there is no terminal to ask: pass --yes to approve it"
                .into(),
    }
}

/// Whether we may prompt: stdin AND stderr must be terminals (dialoguer draws on stderr and
/// would otherwise read /dev/tty behind our back).
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks questions.
pub trait Prompter {
    fn confirm(&mut self, req: &ConfirmRequest) -> Answer;
    /// `None` when no decision can be had (exit 4).
    fn in_doubt(&mut self, action: &str, node: &str, command: &str) -> Option<InDoubtChoice>;
}

/// Applies `decide`, and asks on the terminal when the policy says so.
pub struct TerminalPrompter {
    pub approvals: Approvals,
    pub interactive: bool,
}

impl TerminalPrompter {
    pub fn new(approvals: Approvals) -> Self {
        TerminalPrompter {
            approvals,
            interactive: is_interactive(),
        }
    }
}

impl Prompter for TerminalPrompter {
    fn confirm(&mut self, req: &ConfirmRequest) -> Answer {
        match decide(
            self.interactive,
            &self.approvals,
            req.destructive,
            &req.cluster,
        ) {
            Policy::Approve { how } => Answer::Approved { how },
            Policy::Refuse { reason } => Answer::Unavailable { reason },
            Policy::Ask => ask(req),
        }
    }

    fn in_doubt(&mut self, action: &str, node: &str, command: &str) -> Option<InDoubtChoice> {
        if !self.interactive {
            return None;
        }
        let term = console::Term::stderr();
        let _ = term.write_line(&format!(
            "\nAction {action} on {node} was sent before the crash and its outcome is unknown:\n    {command}"
        ));
        let items = [
            "re-run it",
            "mark it done (I checked: it took effect)",
            "abort the resume",
        ];
        let sel = dialoguer::Select::new()
            .with_prompt("What should happen?")
            .items(items)
            .default(2)
            .interact_on_opt(&term);
        let _ = term.show_cursor();
        let sel = sel.ok().flatten()?;
        Some(match sel {
            0 => InDoubtChoice::Rerun,
            1 => InDoubtChoice::MarkDone,
            _ => InDoubtChoice::Abort,
        })
    }
}

/// A multi-select of `choices` for runbook variable `name` (space toggles, enter accepts);
/// `None` when interrupted. An empty choice is allowed: the runbook's guards judge it.
pub fn choose(name: &str, about: &str, choices: &[String]) -> Option<Vec<String>> {
    let term = console::Term::stderr();
    let _ = term.write_line(&format!(
        "\n{name}: {about}{}",
        if choices.is_empty() {
            " (nothing to choose from: pass --var)"
        } else {
            ""
        }
    ));
    if choices.is_empty() {
        return Some(Vec::new());
    }
    let sel = dialoguer::MultiSelect::new()
        .with_prompt(format!("Choose {name} (space selects, enter accepts)"))
        .items(choices)
        .interact_on_opt(&term);
    let _ = term.show_cursor();
    let picked = sel.ok().flatten()?;
    Some(picked.into_iter().map(|i| choices[i].clone()).collect())
}

fn ask(req: &ConfirmRequest) -> Answer {
    let term = console::Term::stderr();
    let answer = ask_on(&term, req);
    // dialoguer hides the cursor while it reads a key and leaves it hidden when the read is
    // interrupted (Ctrl-C): always give the operator's terminal its cursor back.
    let _ = term.show_cursor();
    answer
}

fn ask_on(term: &console::Term, req: &ConfirmRequest) -> Answer {
    let _ = term.write_line("");
    for d in &req.details {
        let _ = term.write_line(&format!("  {d}"));
    }
    if req.destructive {
        let _ = term.write_line(&format!(
            "\n  {}",
            console::style("DESTRUCTIVE STEP").red().bold()
        ));
        let _ = term.write_line(&format!("  {}", req.question));
        loop {
            let typed: Result<String, _> = dialoguer::Input::new()
                .with_prompt(format!(
                    "Type the cluster name `{}` to proceed (empty to stop)",
                    req.cluster
                ))
                .allow_empty(true)
                .interact_text_on(term);
            match typed {
                Ok(t) if t.trim() == req.cluster => {
                    return Answer::Approved {
                        how: "typed".into(),
                    }
                }
                Ok(t) if t.trim().is_empty() => {
                    return Answer::Declined {
                        how: "typed".into(),
                    }
                }
                Ok(t) => {
                    let _ = term.write_line(&format!(
                        "  `{}` is not `{}`; try again.",
                        t.trim(),
                        req.cluster
                    ));
                }
                // Ctrl-C or end of input is never consent.
                Err(_) => {
                    return Answer::Declined {
                        how: "tty (Ctrl-C or end of input)".into(),
                    }
                }
            }
        }
    }
    match dialoguer::Confirm::new()
        .with_prompt(&req.question)
        .default(false)
        .wait_for_newline(true)
        .interact_on_opt(term)
    {
        Ok(Some(true)) => Answer::Approved { how: "tty".into() },
        Ok(Some(false)) => Answer::Declined { how: "tty".into() },
        // Ctrl-C, Esc or end of input is never consent.
        Ok(None) | Err(_) => Answer::Declined {
            how: "tty (Ctrl-C or end of input)".into(),
        },
    }
}

/// Answers from a script, for tests (and `diagnose`, which never asks).
#[derive(Debug, Default)]
pub struct ScriptedPrompter {
    pub answers: std::collections::VecDeque<bool>,
    pub in_doubt: Option<InDoubtChoice>,
    pub asked: Vec<ConfirmRequest>,
}

impl Prompter for ScriptedPrompter {
    fn confirm(&mut self, req: &ConfirmRequest) -> Answer {
        self.asked.push(req.clone());
        match self.answers.pop_front() {
            Some(true) => Answer::Approved {
                how: "scripted".into(),
            },
            Some(false) => Answer::Declined {
                how: "scripted".into(),
            },
            None => Answer::Unavailable {
                reason: "no scripted answer left".into(),
            },
        }
    }
    fn in_doubt(&mut self, _: &str, _: &str, _: &str) -> Option<InDoubtChoice> {
        self.in_doubt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(yes: bool, cd: Option<&str>) -> Approvals {
        Approvals {
            yes,
            confirm_destructive: cd.map(String::from),
        }
    }

    #[test]
    fn ordinary_confirmations() {
        assert_eq!(decide(true, &a(false, None), false, "c"), Policy::Ask);
        assert_eq!(
            decide(false, &a(true, None), false, "c"),
            Policy::Approve {
                how: "--yes".into()
            }
        );
        assert_eq!(
            decide(true, &a(true, None), false, "c"),
            Policy::Approve {
                how: "--yes".into()
            }
        );
        match decide(false, &a(false, None), false, "c") {
            Policy::Refuse { reason } => assert!(reason.contains("--yes")),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn destructive_needs_the_cluster_name() {
        match decide(false, &a(true, None), true, "prod") {
            Policy::Refuse { reason } => {
                assert!(reason.contains("--confirm-destructive prod"), "{reason}");
                assert!(reason.contains("--yes does not approve"), "{reason}");
            }
            p => panic!("{p:?}"),
        }
        assert_eq!(
            decide(false, &a(false, Some("prod")), true, "prod"),
            Policy::Approve {
                how: "--confirm-destructive".into()
            }
        );
        assert!(matches!(
            decide(true, &a(false, Some("staging")), true, "prod"),
            Policy::Refuse { .. }
        ));
        assert_eq!(decide(true, &a(true, None), true, "prod"), Policy::Ask);
    }
}
