//! `run` and `resume`: open (or reopen) the incident journal, execute the runbook, close.

use super::{journal_dir, load_inventory, runbooks::load};
use crate::cli::{ApprovalArgs, GlobalOpts, ResumeArgs, RunArgs};
use crate::engine::prompter::{Approvals, TerminalPrompter};
use crate::engine::{interrupt, Engine, EngineEvent, Listener, Prior, Recorder, RunConfig};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::journal::{self, Event, JournalWriter, Redactor};
use crate::runbook::{Library, Plan};
use crate::ssh::SshTransport;
use crate::ui::{self, outcome, Settings, TerminalReporter};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The journal as the engine's first listener; also journals host keys accepted on first
/// contact, before the event that made the contact.
struct JournalListener<'a> {
    writer: &'a mut JournalWriter,
    ssh: Arc<SshTransport>,
    inv: &'a Inventory,
    /// Nodes with a journaled action result: they keep a witness of the journal's heads.
    participants: std::collections::BTreeSet<String>,
}

impl JournalListener<'_> {
    fn host_keys(&mut self) -> std::result::Result<(), String> {
        for k in self.ssh.take_accepted_host_keys() {
            self.writer
                .append(Event::HostKeyAccepted {
                    node: k.node,
                    host: k.host,
                    fingerprint: k.fingerprint,
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Listener for JournalListener<'_> {
    fn on_event(&mut self, ev: &EngineEvent) -> std::result::Result<(), String> {
        let EngineEvent::Journal(ev) = ev else {
            return Ok(());
        };
        self.host_keys()?;
        let rec = self.writer.append(ev.clone()).map_err(|e| e.to_string())?;
        if let Event::ActionResult { node, .. } = ev {
            self.participants.insert(node.clone());
            witness(
                &self.ssh,
                self.inv,
                self.writer.incident(),
                node,
                rec.seq,
                &rec.hash,
            );
        }
        Ok(())
    }
}

/// Appends the journal's head to `node`'s witness. A witness that cannot be written is
/// reported, not fatal: the recovery goes on, and `journal verify --witnesses` will say that
/// node's witness lacks that head.
fn witness(ssh: &SshTransport, inv: &Inventory, incident: &str, node: &str, seq: u64, hash: &str) {
    let Some(n) = inv.node(node) else { return };
    let cmd = crate::transport::RemoteCommand::new(
        journal::witness::write_command(incident, node, seq, hash),
        n.ssh.connect_timeout + std::time::Duration::from_secs(5),
    );
    match crate::transport::Transport::exec(ssh, n, &cmd) {
        Ok(out) if out.success() => {}
        Ok(out) => eprintln!(
            "nats-rescue: {node}: cannot write the journal witness (exit {:?}): {}",
            out.exit_code,
            out.stderr.text.trim()
        ),
        Err(e) => eprintln!("nats-rescue: {node}: cannot write the journal witness: {e}"),
    }
}

fn parse_vars(plan: &Plan, vars: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in vars {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Error::Usage(format!("--var {kv:?}: expected KEY=VALUE")));
        };
        if !plan.vars.contains_key(k) {
            let known: Vec<&str> = plan.vars.keys().map(String::as_str).collect();
            return Err(Error::Usage(format!(
                "--var {k}: runbook `{}` has no variable `{k}` (it has: {})",
                plan.id,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn redactor_for(plan: &Plan, vars: &BTreeMap<String, String>, inv: &Inventory) -> Redactor {
    let mut r = Redactor::new();
    // The system account's password (inline or from its env var) never reaches the journal.
    for s in inv.secrets() {
        r.add_secret(s);
    }
    for (k, v) in vars {
        if plan.vars.get(k).is_some_and(|d| d.secret) || r.is_secret_key(k) {
            r.add_secret(v.clone());
        }
    }
    r
}

/// SSH with refused connections retried (`ssh.retries`).
pub(crate) fn retrying(ssh: &Arc<SshTransport>) -> Arc<dyn crate::transport::Transport> {
    Arc::new(crate::transport::retry::Retrying::new(ssh.clone()))
}

/// Real transport and fact gathering.
fn transport(g: &GlobalOpts) -> (Arc<SshTransport>, Arc<crate::engine::Gather>) {
    let ssh = Arc::new(SshTransport::new(g.accept_new_host_keys));
    let t2 = retrying(&ssh);
    let gather: Arc<crate::engine::Gather> =
        Arc::new(move |inv: &Inventory, th| crate::nats::gather(&*t2, inv, None, th));
    (ssh, gather)
}

/// Monitoring-only polls for waits on leader/health conditions (no SSH probe per poll).
fn light_gather(t: &Arc<dyn crate::transport::Transport>) -> Arc<crate::engine::LightGather> {
    let t = t.clone();
    Arc::new(move |inv: &Inventory, th, level| {
        crate::nats::light::gather_light(&*t, inv, th, level)
    })
}

/// Refuses at once, before anything runs, a runbook with a destructive confirmation that
/// could not be approved: otherwise its earlier steps (stop every server, back up) would run
/// and the run would stop half-way at the destructive question.
fn preflight(plan: &Plan, inv: &Inventory, a: &ApprovalArgs, rehearsal: bool) -> Result<()> {
    if rehearsal || !plan.has_destructive_confirmation() {
        return Ok(());
    }
    use crate::engine::prompter::{decide, is_interactive, Policy};
    match decide(is_interactive(), &approvals(a), true, &inv.cluster) {
        Policy::Refuse { reason } => Err(Error::NeedDecision(format!(
            "runbook `{}` has a destructive step; {reason}. Nothing was run.",
            plan.id
        ))),
        _ => Ok(()),
    }
}

/// Refuses before the first change when the runbook has privileged steps and `sudo -n`
/// needs a password on a node they may target (`ssh.sudo: true`): the run would otherwise
/// stop half-way, after changing other nodes. Unreachable nodes are the runbook's business.
fn sudo_preflight(
    g: &GlobalOpts,
    plan: &Plan,
    inv: &Inventory,
    limit: &[String],
    rehearsal: bool,
) -> Result<()> {
    if rehearsal || !plan.steps.iter().any(|s| s.is_privileged()) {
        return Ok(());
    }
    let nodes: Vec<&crate::inventory::Node> = inv
        .nodes
        .iter()
        .filter(|n| n.ssh.sudo && (limit.is_empty() || limit.contains(&n.name)))
        .collect();
    if nodes.is_empty() {
        return Ok(());
    }
    let ssh = SshTransport::new(g.accept_new_host_keys);
    let results = ssh.run_parallel(
        &nodes,
        |_| {
            let mut cmd =
                crate::transport::RemoteCommand::new("true", std::time::Duration::from_secs(10));
            cmd.sudo = true;
            cmd
        },
        8,
    );
    let refused: Vec<String> = results
        .into_iter()
        .filter(|(_, r)| {
            matches!(
                r,
                Err(crate::transport::TransportError::SudoPassword { .. })
            )
        })
        .filter_map(|(name, _)| {
            let node = inv.node(&name)?;
            Some(format!(
                "{name}: {}",
                crate::nats::probe::sudo_refused(node)
            ))
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::Problems(format!(
        "runbook `{}` has privileged steps, and sudo needs a password on {}. Nothing was run.",
        plan.id,
        refused.join("; ")
    )))
}

fn approvals(a: &ApprovalArgs) -> Approvals {
    Approvals {
        yes: a.yes,
        confirm_destructive: a.confirm_destructive.clone(),
    }
}

pub fn run(g: &GlobalOpts, lib: &Library, args: &RunArgs) -> Result<i32> {
    let inv = load_inventory(g)?;
    let plan = load(lib, &args.runbook)?;
    let vars = parse_vars(&plan, &args.vars)?;
    for n in &args.nodes {
        if inv.node(n).is_none() {
            return Err(Error::Usage(format!(
                "--node {n}: no such node in {}",
                inv.source.display()
            )));
        }
    }
    let mut vars = vars;
    ask_vars(g, &plan, &inv, &mut vars)?;
    preflight(&plan, &inv, &args.approval, args.dry_run)?;
    sudo_preflight(g, &plan, &inv, &args.nodes, args.dry_run)?;
    let dir = journal_dir(g);
    let incident = journal::new_incident_id(&plan.id);
    let redactor = redactor_for(&plan, &vars, &inv);
    let opened = Event::IncidentOpened {
        operator: journal::current_operator(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        runbook: plan.id.clone(),
        runbook_sha256: plan.sha256.clone(),
        runbook_source: plan.source.describe(),
        inventory: inv
            .source
            .canonicalize()
            .unwrap_or(inv.source.clone())
            .display()
            .to_string(),
        inventory_sha256: inv.sha256.clone(),
        cluster: inv.cluster.clone(),
        rehearsal: args.dry_run,
        vars: redactor.redact_vars(&vars),
        node_limit: args.nodes.clone(),
    };
    let mut writer = JournalWriter::create_with_redactor(&dir, &incident, opened, redactor)?;
    let mut cfg = RunConfig::new(incident.clone());
    cfg.rehearsal = args.dry_run;
    cfg.vars = vars;
    cfg.node_limit = args.nodes.clone();
    execute(
        g,
        &plan,
        &inv,
        &mut writer,
        cfg,
        Prior::default(),
        Default::default(),
        &args.approval,
        &args.signing,
    )
}

/// Variables with `ask:` that `--var` left unset, chosen on the terminal: one gather, the
/// expression's names offered in a multi-select (nothing pre-selected). Without a terminal
/// nothing is asked and the runbook sees the default (its guards say what is missing).
fn ask_vars(
    g: &GlobalOpts,
    plan: &Plan,
    inv: &Inventory,
    vars: &mut BTreeMap<String, String>,
) -> Result<()> {
    let pending: Vec<(&String, &str)> = plan
        .vars
        .iter()
        .filter(|(k, _)| !vars.contains_key(*k))
        .filter_map(|(k, v)| v.ask.as_deref().map(|a| (k, a)))
        .collect();
    if pending.is_empty() || !crate::engine::prompter::is_interactive() {
        return Ok(());
    }
    let (_ssh, gather) = transport(g);
    let th = crate::nats::Thresholds::from_vars(vars);
    let facts = gather(inv, &th);
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    let ctx = minijinja::Value::from_serialize(serde_json::json!({
        "facts": facts, "nodes": names, "vars": vars, "cluster": inv.cluster,
    }));
    for (name, ask) in pending {
        let choices = crate::runbook::template::eval_names(ask, &ctx)
            .map_err(|e| Error::Usage(format!("vars.{name}.ask: {e}")))?;
        let about = plan.vars[name].description.clone().unwrap_or_default();
        let chosen = crate::engine::prompter::choose(name, &about, &choices)
            .ok_or_else(|| Error::NeedDecision(format!("no value chosen for `{name}`")))?;
        vars.insert(name.clone(), chosen.join(","));
    }
    Ok(())
}

/// `~/.ssh/id_ed25519`, when it exists.
fn default_key() -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(std::env::var_os("HOME")?).join(".ssh/id_ed25519");
    p.exists().then_some(p)
}

#[allow(clippy::too_many_arguments)]
fn execute(
    g: &GlobalOpts,
    plan: &Plan,
    inv: &Inventory,
    writer: &mut JournalWriter,
    cfg: RunConfig,
    prior: Prior,
    prior_participants: std::collections::BTreeSet<String>,
    approval: &ApprovalArgs,
    signing: &crate::cli::SignArgs,
) -> Result<i32> {
    interrupt::install();
    let settings = Settings::resolve(g);
    let mut reporter = TerminalReporter::new(settings);
    let incident = cfg.incident.clone();
    let rehearsal = cfg.rehearsal;
    reporter.header(&outcome::run_header(
        rehearsal,
        &incident,
        &plan.id,
        &plan.title,
    ));
    reporter.line(&format!("  journal: {}", writer.path().display()));
    let (ssh, gather) = transport(g);
    let mut prompter = TerminalPrompter::new(approvals(approval));
    let transport: Arc<dyn crate::transport::Transport> = retrying(&ssh);
    let mut recorder = Recorder::default();
    let (result, participants) = {
        let mut journal = JournalListener {
            writer,
            ssh: ssh.clone(),
            inv,
            participants: prior_participants,
        };
        let listeners: Vec<&mut dyn Listener> = vec![&mut journal, &mut reporter, &mut recorder];
        let light = light_gather(&transport);
        let o = Engine::new(plan, inv, transport, gather, &mut prompter, listeners, cfg)
            .with_light_gather(light)
            .with_prior(prior)
            .run();
        (o, journal.participants)
    };
    drop(reporter);
    for k in ssh.take_accepted_host_keys() {
        writer.append(Event::HostKeyAccepted {
            node: k.node,
            host: k.host,
            fingerprint: k.fingerprint,
        })?;
    }
    let closed = writer.append(Event::IncidentClosed {
        outcome: result.journaled().as_str().into(),
        detail: result.detail(),
    })?;
    for node in &participants {
        witness(&ssh, inv, &incident, node, closed.seq, &closed.hash);
    }
    if signing.sign {
        let key = signing.sign_key.clone().or_else(default_key);
        match journal::sign::sign(writer.path(), key.as_deref()) {
            Ok(Some(s)) => eprintln!(
                "signed the journal's head with {}: {}",
                s.fingerprint,
                s.sig_file.display()
            ),
            Ok(None) => eprintln!("nats-rescue: --sign: no key (pass --sign-key FILE)"),
            Err(e) => eprintln!("nats-rescue: --sign: {e}"),
        }
    }
    let code = result.exit_code();
    if !g.quiet {
        eprintln!("\n{}", outcome::outcome_line(&result, &incident));
        for l in outcome::journal_lines(writer.path(), writer.head_hash(), &incident) {
            eprintln!("{l}");
        }
    }
    if g.json {
        ui::out_json(&serde_json::json!({
            "incident": incident, "runbook": plan.id, "rehearsal": rehearsal,
            "outcome": result.journaled().as_str(), "detail": result.detail(), "exit_code": code,
            "findings": recorder.findings(), "recommendations": recorder.recommendations(),
            "journal": writer.path(), "head_hash": writer.head_hash(),
        }));
    }
    Ok(code)
}

pub fn resume(g: &GlobalOpts, lib: &Library, args: &ResumeArgs) -> Result<i32> {
    let dir = journal_dir(g);
    let incident = match &args.incident {
        Some(i) => {
            let p = journal::resolve(&dir, i)?;
            p.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(i)
                .to_string()
        }
        None => journal::latest_unfinished(&dir)
            .ok_or_else(|| Error::Usage(format!("no unfinished incident in {}", dir.display())))?,
    };
    let (mut writer, replay) = JournalWriter::open_existing(&dir, &incident)?;
    if let Some(t) = &replay.repaired_torn_tail {
        eprintln!("nats-rescue: the journal's last line was torn (crash mid-write: line {}, {} bytes); repaired by appending a record, history untouched", t.line, t.bytes);
    }
    if replay.is_finished() {
        eprintln!(
            "incident {incident} is closed ({}); nothing to resume",
            replay.status()
        );
        return Ok(0);
    }
    let opened = replay.opened.clone().ok_or_else(|| {
        Error::JournalIntegrity(format!("incident {incident} has no incident_opened record"))
    })?;
    let plan = if opened.runbook_source == "builtin" {
        load(lib, &opened.runbook)?
    } else {
        load(lib, &opened.runbook_source)?
    };
    if plan.sha256 != opened.runbook_sha256 {
        return Err(Error::Usage(format!(
            "runbook `{}` changed since the incident started (sha256 {} then, {} now); refusing to resume with different instructions",
            plan.id,
            &opened.runbook_sha256[..12.min(opened.runbook_sha256.len())],
            &plan.sha256[..12]
        )));
    }
    let mut gg = g.clone();
    if gg.inventory.is_none() {
        gg.inventory = Some(opened.inventory.clone().into());
    }
    let inv = load_inventory(&gg)?;
    if inv.sha256 != opened.inventory_sha256 {
        eprintln!("nats-rescue: warning: the inventory changed since the incident started");
    }
    // The resumed records are redacted like the first ones: the inventory's secrets too.
    for s in inv.secrets() {
        writer.redactor_mut().add_secret(s);
    }
    let prior = Prior {
        finished: replay
            .finished_actions
            .iter()
            .filter(|(_, r)| r.succeeded())
            .map(|(a, _)| a.clone())
            .collect(),
        in_doubt: replay.in_doubt.clone(),
        confirmations: replay.confirmations.clone(),
        backups: replay
            .backups
            .iter()
            .map(|b| (b.step.clone(), b.node.clone()))
            .collect(),
        archives: replay.backups.clone(),
        finished_steps: replay
            .step_outcomes
            .iter()
            .filter(|(_, o)| o.as_str() == crate::journal::StepOutcome::Ok.as_str())
            .map(|(st, _)| st.clone())
            .collect(),
        started_steps: replay.started_steps.clone(),
        step_targets: replay.step_targets.clone(),
    };
    writer.append(Event::Resumed {
        operator: journal::current_operator(),
        in_doubt: prior
            .in_doubt
            .iter()
            .filter(|d| d.mutating)
            .map(|d| format!("{} ({})", d.action, d.command))
            .collect(),
        repaired_torn_tail: replay.repaired_torn_tail.is_some(),
    })?;
    let mut cfg = RunConfig::new(incident);
    cfg.rehearsal = opened.rehearsal;
    cfg.vars = opened.vars.clone();
    cfg.node_limit = opened.node_limit.clone();
    let participants = replay
        .finished_actions
        .values()
        .map(|a| a.node.clone())
        .collect();
    execute(
        g,
        &plan,
        &inv,
        &mut writer,
        cfg,
        prior,
        participants,
        &args.approval,
        &args.signing,
    )
}
