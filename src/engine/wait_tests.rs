//! Light waits: a leader wait polls the light gather and runs the full gather once when the
//! light condition holds; a condition over SSH facts polls in full; a disagreement between
//! the two falls back to full polls.

use super::prompter::ScriptedPrompter;
use super::*;
use crate::inventory::Inventory;
use crate::nats::light::LightLevel;
use crate::runbook::{parse, Source};
use crate::transport::local::LocalTransport;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn inventory() -> Inventory {
    Inventory::parse(
        Path::new("inv.yaml"),
        "cluster: test\nnodes:\n  - {name: n1, host: 127.0.0.1}\n",
    )
    .unwrap()
}

fn runbook(until: &str) -> String {
    format!(
        "id: t\ntitle: t\ncause: t\nsteps:\n  - id: done\n    kind: verify\n    wait_until: {until:?}\n    timeout: 3s\n    interval: 50ms\n"
    )
}

struct Counts {
    full: Arc<AtomicUsize>,
    light: Arc<AtomicUsize>,
    levels: Arc<std::sync::Mutex<Vec<LightLevel>>>,
}

/// Full gather: leader once `full_leader_after` full calls happened. Light gather: leader
/// from its `light_leader_after`-th call on.
fn run(
    until: &str,
    full_leader_after: usize,
    light_leader_after: usize,
) -> (Outcome, Counts, bool) {
    let plan = parse(Path::new("t.yaml"), &runbook(until), Source::Builtin).unwrap();
    let inv = inventory();
    let c = Counts {
        full: Arc::default(),
        light: Arc::default(),
        levels: Arc::default(),
    };
    let (full, light, levels) = (c.full.clone(), c.light.clone(), c.levels.clone());
    let gather: Arc<Gather> = Arc::new(move |_: &Inventory, _: &crate::nats::Thresholds| {
        let n = full.fetch_add(1, Ordering::SeqCst) + 1;
        ClusterFacts {
            has_leader: n >= full_leader_after,
            ..Default::default()
        }
    });
    let lg: Arc<LightGather> = Arc::new(
        move |_: &Inventory, _: &crate::nats::Thresholds, level: LightLevel| {
            levels.lock().unwrap().push(level);
            let n = light.fetch_add(1, Ordering::SeqCst) + 1;
            ClusterFacts {
                has_leader: n >= light_leader_after,
                ..Default::default()
            }
        },
    );
    let mut p = ScriptedPrompter::default();
    let mut rec = Recorder::default();
    let transport: Arc<dyn crate::transport::Transport> = Arc::new(LocalTransport::default());
    let outcome = Engine::new(
        &plan,
        &inv,
        transport,
        gather,
        &mut p,
        vec![&mut rec],
        RunConfig::new("20260101T000000Z-t-0000"),
    )
    .with_light_gather(lg)
    .run();
    // The facts journaled at the end of the wait are the full gather's.
    let journaled_full = rec
        .journal()
        .iter()
        .any(|e| matches!(e, crate::journal::Event::FactsGathered { step, .. } if step == "done"));
    (outcome, c, journaled_full)
}

#[test]
fn leader_wait_polls_light_and_gathers_in_full_once_when_it_holds() {
    let (outcome, c, journaled) = run("facts.has_leader", 1, 5);
    assert_eq!(outcome, Outcome::Recovered, "{outcome:?}");
    assert_eq!(
        c.light.load(Ordering::SeqCst),
        5,
        "light polls until it holds"
    );
    assert_eq!(
        c.full.load(Ordering::SeqCst),
        1,
        "one full gather, when it held"
    );
    assert!(c
        .levels
        .lock()
        .unwrap()
        .iter()
        .all(|l| *l == LightLevel::Jsz));
    assert!(journaled);
}

#[test]
fn healthy_wait_polls_every_monitoring_endpoint() {
    let (outcome, c, _) = run("facts.has_leader and facts.healthy", 1, 1);
    // `healthy` combined with anything else is not light: every poll is full.
    assert_eq!(c.light.load(Ordering::SeqCst), 0);
    assert_eq!(
        outcome,
        Outcome::VerifyFailed(
            "step `done`: `facts.has_leader and facts.healthy` did not hold within 3s".into()
        )
    );
    let (_, c, _) = run("facts.healthy", 1, 1);
    assert!(c.light.load(Ordering::SeqCst) >= 1);
    assert!(c
        .levels
        .lock()
        .unwrap()
        .iter()
        .all(|l| *l == LightLevel::Http));
}

#[test]
fn condition_over_ssh_facts_polls_in_full() {
    let (outcome, c, _) = run("facts.has_leader and facts.down | length == 0", 4, 1);
    assert_eq!(outcome, Outcome::Recovered, "{outcome:?}");
    assert_eq!(c.light.load(Ordering::SeqCst), 0);
    assert_eq!(c.full.load(Ordering::SeqCst), 4);
}

#[test]
fn light_and_full_disagreeing_falls_back_to_full_polls() {
    // Light says leader at once, the full gather only at its 3rd call.
    let (outcome, c, _) = run("facts.has_leader", 3, 1);
    assert_eq!(outcome, Outcome::Recovered, "{outcome:?}");
    assert_eq!(
        c.light.load(Ordering::SeqCst),
        1,
        "no light poll after they disagreed"
    );
    assert_eq!(c.full.load(Ordering::SeqCst), 3);
}

#[test]
fn timeout_ends_with_a_full_gather() {
    let (outcome, c, journaled) = run("facts.has_leader", usize::MAX, usize::MAX);
    assert!(matches!(outcome, Outcome::VerifyFailed(_)), "{outcome:?}");
    assert!(c.light.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        c.full.load(Ordering::SeqCst),
        1,
        "only the last word is the full gather's"
    );
    assert!(journaled);
}
