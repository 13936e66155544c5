//! What templates and expressions see: `facts`, `steps` (captures), `vars`, `cluster`,
//! `nodes`, `inventory`, `incident`, `rehearsal`, and per node `node`, `f` (that node's
//! facts) and, in `expect`, `result`.

use super::Engine;
use crate::inventory::Node;
use crate::journal::Event;
use crate::nats::ClusterFacts;
use crate::runbook::template::Expr;
use crate::runbook::Template;
use minijinja::value::Value;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

/// The latest facts, typed, and as templates see them (converted once per gathering).
#[derive(Default)]
pub(super) struct Facts {
    typed: ClusterFacts,
    value: Value,
    gathered: bool,
}

impl Facts {
    pub(super) fn set(&mut self, f: ClusterFacts) {
        self.value = Value::from_serialize(&f);
        self.typed = f;
        self.gathered = true;
    }
    pub(super) fn typed(&self) -> &ClusterFacts {
        &self.typed
    }
    pub(super) fn gathered(&self) -> bool {
        self.gathered
    }
}

impl Engine<'_> {
    fn base_ctx(&self) -> BTreeMap<&'static str, Value> {
        let mut m = BTreeMap::new();
        m.insert("facts", self.facts.value.clone());
        m.insert("steps", Value::from_serialize(&self.captures));
        m.insert("vars", Value::from_serialize(&self.vars));
        m.insert("cluster", Value::from(self.inv.cluster.clone()));
        let names: Vec<String> = self.inv.nodes.iter().map(|n| n.name.clone()).collect();
        m.insert(
            "inventory",
            Value::from_serialize(json!({
                "cluster": self.inv.cluster, "nodes": names, "size": names.len(), "quorum": self.inv.quorum(),
                "hosts": self.inv.nodes.iter().map(|n| json!({"name": n.name, "host": n.host, "cluster_port": n.nats.cluster_port, "monitor_port": n.nats.monitor_port})).collect::<Vec<_>>(),
            })),
        );
        m.insert("nodes", Value::from_serialize(&names));
        m.insert(
            "incident",
            Value::from_serialize(
                json!({"id": self.cfg.incident, "rehearsal": self.cfg.rehearsal}),
            ),
        );
        m.insert("rehearsal", Value::from(self.cfg.rehearsal));
        m
    }

    /// The cluster-wide context.
    pub(super) fn ctx(&self) -> Value {
        Value::from_serialize(self.base_ctx())
    }

    /// The cluster-wide context plus a few roots (`reply`, `replies` of a `nats` step).
    pub(super) fn ctx_with(&self, extra: &[(&'static str, Value)]) -> Value {
        let mut m = self.base_ctx();
        for (k, v) in extra {
            m.insert(k, v.clone());
        }
        Value::from_serialize(m)
    }

    /// The context of one node; `result` is the action's result (for `expect`).
    pub(super) fn node_ctx(&self, node: &Node, result: Option<&Json>) -> Value {
        let mut m = self.base_ctx();
        m.insert("node", node_value(node));
        let f = self
            .facts
            .value
            .get_attr("nodes")
            .and_then(|n| n.get_item(&Value::from(node.name.as_str())))
            .unwrap_or(Value::UNDEFINED);
        m.insert("f", f);
        if let Some(r) = result {
            m.insert("result", Value::from_serialize(r));
        }
        Value::from_serialize(m)
    }

    /// Evaluates a condition; an error is a step error naming the runbook, step and
    /// expression (never a silent `false`).
    pub(super) fn condition(
        &self,
        step: &str,
        what: &str,
        e: &Expr,
        ctx: &Value,
    ) -> Result<bool, super::Stop> {
        e.eval_bool(ctx)
            .map_err(|err| self.runbook_error(step, what, e.source(), &err))
    }

    /// Renders a text template; an error is a step error.
    pub(super) fn text(
        &self,
        step: &str,
        what: &str,
        t: &Template,
        ctx: &Value,
    ) -> Result<String, super::Stop> {
        t.render(ctx)
            .map_err(|err| self.runbook_error(step, what, t.source(), &err))
    }

    /// Gathers facts afresh and journals their summary.
    pub(super) fn gather_facts(&mut self, step: &str) -> super::StepResult {
        let facts = (self.gather)(self.inv, &self.thresholds);
        self.facts.set(facts);
        self.journal(Event::FactsGathered {
            step: step.into(),
            summary: facts_summary(self.facts.typed()),
        })
    }

    /// Re-gathers without journaling (each poll of a wait; the wait journals its last).
    pub(super) fn poll_facts(&mut self) {
        let facts = (self.gather)(self.inv, &self.thresholds);
        self.facts.set(facts);
    }

    /// Keeps a node's result for later steps (`steps.<id>.nodes.<node>`).
    pub(super) fn capture(&mut self, step: &str, node: &str, entry: Json) {
        let s = self
            .captures
            .entry(step.to_string())
            .or_insert_with(|| json!({"nodes": {}, "ok": true, "failed": []}));
        let ok = entry.get("ok").and_then(Json::as_bool).unwrap_or(false);
        if let Some(nodes) = s.get_mut("nodes").and_then(Json::as_object_mut) {
            nodes.insert(node.to_string(), entry);
        }
        if !ok {
            s["ok"] = json!(false);
            if let Some(f) = s.get_mut("failed").and_then(Json::as_array_mut) {
                f.push(json!(node));
            }
        }
    }

    pub(super) fn reset_capture(&mut self, step: &str) {
        self.captures.insert(
            step.to_string(),
            json!({"nodes": {}, "ok": true, "failed": []}),
        );
    }

    /// Keeps this moment's facts for later steps (`steps.<probe>.facts`).
    pub(super) fn capture_facts(&mut self, step: &str) {
        let facts = serde_json::to_value(self.facts.typed()).unwrap_or(Json::Null);
        self.captures
            .insert(step.to_string(), json!({"ok": true, "facts": facts}));
    }
}

/// `node` as templates see it. Service commands are commands: interpolated unquoted.
fn node_value(n: &Node) -> Value {
    let safe = |s: &str| Value::from_safe_string(s.to_string());
    let mut service = BTreeMap::new();
    service.insert("start", safe(&n.nats.service.start));
    service.insert("stop", safe(&n.nats.service.stop));
    service.insert("status", safe(&n.nats.service.status));
    service.insert(
        "reload",
        n.nats
            .service
            .reload
            .as_deref()
            .map_or(Value::from(()), safe),
    );
    let store = n.nats.store_dir.trim_end_matches('/');
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    m.insert("name", Value::from(n.name.clone()));
    m.insert("host", Value::from(n.host.clone()));
    m.insert("user", Value::from(n.ssh.user.clone()));
    m.insert("port", Value::from(n.ssh.port));
    m.insert("cluster_port", Value::from(n.nats.cluster_port));
    m.insert("monitor_port", Value::from(n.nats.monitor_port));
    m.insert("config_file", Value::from(n.nats.config_file.clone()));
    m.insert("store_dir", Value::from(n.nats.store_dir.clone()));
    m.insert("system_account", Value::from(n.nats.system_account.clone()));
    m.insert("jetstream_dir", Value::from(format!("{store}/jetstream")));
    m.insert(
        "raft_dir",
        Value::from(format!("{store}/jetstream/{}/_js_", n.nats.system_account)),
    );
    m.insert("sudo", Value::from(n.ssh.sudo));
    m.insert("service", Value::from_serialize(&service));
    Value::from_serialize(&m)
}

/// The part of the facts worth journaling at each gathering (the full facts are large).
pub fn facts_summary(f: &ClusterFacts) -> Json {
    let mut nodes = Map::new();
    for (name, n) in &f.nodes {
        nodes.insert(
            name.clone(),
            json!({
                "ssh": n.ssh, "service": n.service, "process": n.process,
                "monitor": n.monitor, "meta_leader": n.meta_leader, "raft": n.raft,
                "healthz": n.healthz,
            }),
        );
    }
    json!({
        "has_leader": f.has_leader, "leader": f.leader, "healthy": f.healthy,
        "not_healthy": f.not_healthy,
        "up": f.up, "down": f.down, "unreachable": f.unreachable, "frozen": f.frozen,
        "nodes": nodes,
    })
}

/// `a,b` or `-`.
pub(super) fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

pub(super) fn names(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
