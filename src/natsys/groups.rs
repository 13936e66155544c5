//! Stream and consumer Raft groups judged across servers (FACTS §12.1).
//!
//! No single server's answer tells whether a group is healthy:
//! - servers that hold no replica of a stream do not list it (and report healthy);
//! - a follower's view of the other replicas is not meaningful (`current:false, active:0`
//!   for healthy peers on 2.15.1, a `lag` on every peer on 2.9.10): only the leader's is;
//! - a leaderless group has no `leader` key, and its survivors list every peer, themselves
//!   included (2.15.1: self `current:true`, the rest `current:false, active:0`; 2.9.10: all
//!   `current:false` with a `lag`);
//! - a server that never reached its peers may run the stream alone and claim to lead it,
//!   with no replicas (2.15.1, every route wrong): several servers then claim one group.
//!
//! So [`combine`] reads every server's view: the expected replica set from all of them, the
//! leader from the server that says it leads, and the replica state from that leader only.

use super::jsz::{GroupCluster, JszView};
use super::reply::ServerReply;
use crate::nats::monitor::{peer_id, PeerInfo};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One server's contribution to [`combine`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerJsz {
    /// `server_name` (not the random `server_id`).
    pub server: String,
    /// `None`: the server did not answer (down, unreachable, or its answer was unusable).
    pub jsz: Option<JszView>,
}

impl ServerJsz {
    /// Views from `PING.JSZ` replies, one per name in `expected` (in that order; `None` for
    /// servers that did not answer), then any server that answered but was not expected.
    /// Unusable replies are returned as messages and count as "did not answer".
    pub fn from_replies(
        replies: &[ServerReply],
        expected: &[&str],
    ) -> (Vec<ServerJsz>, Vec<String>) {
        let mut errors = Vec::new();
        let mut got: BTreeMap<String, JszView> = BTreeMap::new();
        let mut order: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        for r in replies {
            match JszView::from_reply(r) {
                Ok((name, view)) => {
                    if !order.contains(&name) {
                        order.push(name.clone());
                    }
                    got.insert(name, view);
                }
                Err(e) => errors.push(e),
            }
        }
        let views = order
            .into_iter()
            .map(|server| ServerJsz {
                jsz: got.remove(&server),
                server,
            })
            .collect();
        (views, errors)
    }
}

/// A stream's or consumer's Raft group, across every server's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupFacts {
    pub account: String,
    pub stream: String,
    /// Set for a consumer group.
    pub consumer: Option<String>,
    /// `S-R3F-…` / `C-R3F-…` when a server reported it (2.10+ with `raft=true`).
    pub raft_group: Option<String>,
    /// The leader: the one server that says it leads, else the one name its peers agree on.
    pub leader: Option<String>,
    /// The leader answered and says it leads: the replica states below are its view.
    pub leader_confirmed: bool,
    /// Every server that names a leader → the name it gives.
    pub leader_claims: BTreeMap<String, String>,
    /// The expected replica set (the leader's, when confirmed; else everything any server
    /// mentions), sorted.
    pub replicas: Vec<String>,
    /// One entry per name in `replicas`, same order.
    pub peers: Vec<ReplicaFacts>,
    /// Replicas whose server did not answer, or answered without listing the group.
    pub missing: Vec<String>,
    pub offline: Vec<String>,
    /// Replicas the confirmed leader reports not current.
    pub not_current: Vec<String>,
    /// Replicas the confirmed leader reports behind, by how many entries.
    pub lagging: BTreeMap<String, u64>,
    /// Servers that listed the group.
    pub reported_by: Vec<String>,
    /// Servers that hold the group but are not in the confirmed leader's replica set.
    pub strays: Vec<String>,
    /// Stream messages, by the leader (else the highest count reported). Streams only.
    pub messages: Option<u64>,
    /// Replicas whose own last sequence is below the confirmed leader's although the leader
    /// has stored nothing for [`QUIET_S`] seconds, by how many sequences. Streams only.
    /// (nats-server 2.9.10 can keep such a replica after a partition heals while the leader
    /// calls it current: only the replica's own count shows it.)
    pub behind_own: BTreeMap<String, u64>,
    /// A confirmed leader, no rival claim, every replica current in its view, and none
    /// missing. (A leader still calls a dead peer current for seconds after it died,
    /// FACTS §2.1: a replica whose server did not answer is not taken on its word.)
    pub healthy: bool,
    /// Fewer than a majority of `replicas` can take part: current in the confirmed leader's
    /// view (the leader included; such a leader cannot commit and steps down within ~20 s),
    /// or, without one, holding the group on a server that answered.
    pub below_quorum: bool,
    /// What is wrong, one sentence each; empty when healthy and complete.
    pub problems: Vec<String>,
}

/// One replica of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaFacts {
    /// Server name (or `peer <id>` when no name could be found).
    pub name: String,
    pub peer: Option<String>,
    /// Its server answered the request.
    pub answered: bool,
    /// Its server listed the group.
    pub holds: bool,
    pub leader: bool,
    /// In the confirmed leader's view (`Some(true)` for the leader); `None` without one.
    pub current: Option<bool>,
    pub offline: bool,
    pub lag: Option<u64>,
    /// Nanoseconds since the leader last heard from it.
    pub active_ns: Option<u64>,
}

impl GroupFacts {
    /// `ACCOUNT > STREAM` or `ACCOUNT > STREAM > CONSUMER`, as nats-server writes it.
    pub fn label(&self) -> String {
        match &self.consumer {
            Some(c) => format!("{} > {} > {c}", self.account, self.stream),
            None => format!("{} > {}", self.account, self.stream),
        }
    }
}

/// A follower that still lacks the leader's last message this long after the leader stored
/// it is not catching up (a healthy follower is milliseconds behind).
pub const QUIET_S: f64 = 10.0;

/// What one server said about one group.
struct Obs<'a> {
    server: &'a str,
    cluster: Option<&'a GroupCluster>,
    messages: Option<u64>,
    raft_group: Option<&'a str>,
    /// Streams: this server's last sequence.
    last_seq: Option<u64>,
    /// Streams: seconds since this server stored its last message, by its own clock.
    idle_s: Option<f64>,
}

/// Seconds from `from` to `to` (RFC 3339 times); `None` when either does not parse.
fn seconds_between(from: Option<&str>, to: Option<&str>) -> Option<f64> {
    let p = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let (a, b) = (p(from?)?, p(to?)?);
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

type Key = (String, String, Option<String>);

/// Every stream and consumer group any server reported, sorted by account, stream, consumer.
pub fn combine(views: &[ServerJsz]) -> Vec<GroupFacts> {
    let answered: BTreeSet<&str> = views
        .iter()
        .filter(|v| v.jsz.is_some())
        .map(|v| v.server.as_str())
        .collect();
    let names = PeerNames::new(views);
    let mut groups: BTreeMap<Key, Vec<Obs<'_>>> = BTreeMap::new();
    for v in views {
        let Some(jsz) = &v.jsz else { continue };
        for acc in &jsz.account_details {
            for s in &acc.stream_detail {
                let key = (acc.label().to_string(), s.name.clone(), None);
                let state = s.state.as_ref();
                groups.entry(key).or_default().push(Obs {
                    server: &v.server,
                    cluster: s.cluster.as_ref(),
                    messages: state.and_then(|st| st.messages),
                    raft_group: s.raft_group(),
                    last_seq: state.and_then(|st| st.last_seq),
                    idle_s: seconds_between(
                        state.and_then(|st| st.last_ts.as_deref()),
                        jsz.now.as_deref(),
                    ),
                });
                for c in &s.consumer_detail {
                    let group = c
                        .cluster
                        .as_ref()
                        .and_then(|cl| cl.raft_group.as_deref())
                        .or_else(|| {
                            s.consumer_raft_groups
                                .iter()
                                .find(|g| g.name == c.name)
                                .and_then(|g| g.raft_group.as_deref())
                        });
                    let key = (
                        acc.label().to_string(),
                        s.name.clone(),
                        Some(c.name.clone()),
                    );
                    groups.entry(key).or_default().push(Obs {
                        server: &v.server,
                        cluster: c.cluster.as_ref(),
                        messages: None,
                        raft_group: group.filter(|g| !g.is_empty()),
                        last_seq: None,
                        idle_s: None,
                    });
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, obs)| judge(key, &obs, &answered, &names))
        .collect()
}

/// Peer id → server name, from every server name we know of.
struct PeerNames(BTreeMap<String, String>);

impl PeerNames {
    fn new(views: &[ServerJsz]) -> PeerNames {
        let mut m = BTreeMap::new();
        let mut add = |name: &str| {
            if !name.is_empty() {
                m.entry(peer_id(name)).or_insert_with(|| name.to_string());
            }
        };
        for v in views {
            add(&v.server);
        }
        for v in views.iter().filter_map(|v| v.jsz.as_ref()) {
            for acc in &v.account_details {
                for s in &acc.stream_detail {
                    let clusters = s
                        .cluster
                        .iter()
                        .chain(s.consumer_detail.iter().filter_map(|c| c.cluster.as_ref()));
                    for cl in clusters {
                        for r in &cl.replicas {
                            if let Some(n) = r.known_name() {
                                add(n);
                            }
                        }
                    }
                }
            }
        }
        PeerNames(m)
    }

    /// The server name of a replica entry (the placeholder `Server name unknown at this time
    /// (peerID: X)` resolved through the peer id when possible).
    fn of(&self, r: &PeerInfo) -> Option<String> {
        if let Some(n) = r.known_name() {
            return Some(n.to_string());
        }
        let id = r.peer.as_deref().filter(|p| !p.is_empty())?;
        Some(
            self.0
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("peer {id}")),
        )
    }
}

fn judge(
    (account, stream, consumer): Key,
    obs: &[Obs<'_>],
    answered: &BTreeSet<&str>,
    names: &PeerNames,
) -> GroupFacts {
    let mut g = GroupFacts {
        account,
        stream,
        consumer,
        ..GroupFacts::default()
    };
    g.raft_group = obs.iter().find_map(|o| o.raft_group.map(str::to_string));
    g.reported_by = obs.iter().map(|o| o.server.to_string()).collect();
    g.reported_by.sort();
    g.reported_by.dedup();
    let leader_of = |o: &Obs<'_>| o.cluster.and_then(GroupCluster::leader).map(str::to_string);
    g.leader_claims = obs
        .iter()
        .filter_map(|o| Some((o.server.to_string(), leader_of(o)?)))
        .collect();

    // The leader.
    let self_claims: Vec<&Obs<'_>> = obs
        .iter()
        .filter(|o| leader_of(o).as_deref() == Some(o.server))
        .collect();
    let named: BTreeSet<&String> = g.leader_claims.values().collect();
    let leader_view: Option<&Obs<'_>> = match self_claims.as_slice() {
        [one] => {
            g.leader = Some(one.server.to_string());
            g.leader_confirmed = true;
            Some(one)
        }
        [] => {
            if let [only] = named.iter().collect::<Vec<_>>().as_slice() {
                g.leader = Some((**only).clone());
            }
            None
        }
        many => {
            let who: Vec<&str> = many.iter().map(|o| o.server).collect();
            let step_down = match &g.consumer {
                Some(c) => format!("nats consumer cluster step-down {} {c}", g.stream),
                None => format!("nats stream cluster step-down {}", g.stream),
            };
            g.problems.push(format!(
                "{} servers each say they lead it ({}): a split, or replicas that never \
                 formed a group (with the account's credentials, `{step_down}` makes the \
                 group elect one leader)",
                who.len(),
                who.join(", ")
            ));
            None
        }
    };
    if leader_view.is_none() && self_claims.len() <= 1 {
        match (&g.leader, named.len()) {
            (Some(l), _) if answered.contains(l.as_str()) => g.problems.push(format!(
                "its peers name {l} as leader, but {l} does not say it leads it"
            )),
            (Some(l), _) => g.problems.push(format!(
                "its peers name {l} as leader, but {l} did not answer: the leader cannot be \
                 confirmed"
            )),
            (None, 0) => g.problems.push("no leader".into()),
            (None, _) => g.problems.push(format!(
                "no agreed leader: {}",
                claims_text(&g.leader_claims)
            )),
        }
    }

    // The expected replica set.
    let mut set: BTreeSet<String> = BTreeSet::new();
    match leader_view {
        Some(l) => {
            set.insert(l.server.to_string());
            for r in l.cluster.map(|c| c.replicas.as_slice()).unwrap_or_default() {
                set.extend(names.of(r));
            }
            g.strays = g
                .reported_by
                .iter()
                .filter(|s| !set.contains(*s))
                .cloned()
                .collect();
        }
        None => {
            for o in obs {
                set.insert(o.server.to_string());
                for r in o.cluster.map(|c| c.replicas.as_slice()).unwrap_or_default() {
                    set.extend(names.of(r));
                }
            }
            set.extend(g.leader.iter().cloned());
        }
    }

    // Each replica.
    for name in &set {
        let holds = g.reported_by.contains(name);
        let mut r = ReplicaFacts {
            name: name.clone(),
            peer: Some(match name.strip_prefix("peer ") {
                Some(id) => id.to_string(),
                None => peer_id(name),
            }),
            answered: answered.contains(name.as_str()),
            holds,
            leader: g.leader.as_deref() == Some(name.as_str()),
            ..ReplicaFacts::default()
        };
        let mentions = |o: &Obs<'_>| -> Option<PeerInfo> {
            o.cluster?
                .replicas
                .iter()
                .find(|p| names.of(p).as_deref() == Some(name.as_str()))
                .cloned()
        };
        match leader_view {
            Some(l) if l.server == name => r.current = Some(true),
            Some(l) => {
                if let Some(p) = mentions(l) {
                    r.current = Some(p.current.unwrap_or(false));
                    r.offline = p.offline.unwrap_or(false);
                    r.lag = p.lag.filter(|n| *n > 0);
                    r.active_ns = p.active;
                }
            }
            None => {
                r.offline = obs
                    .iter()
                    .filter_map(mentions)
                    .any(|p| p.offline == Some(true));
            }
        }
        g.peers.push(r);
    }
    g.replicas = set.into_iter().collect();

    g.missing = names_where(&g.peers, |r| !r.holds);
    g.offline = names_where(&g.peers, |r| r.offline);
    g.not_current = names_where(&g.peers, |r| r.current == Some(false));
    g.lagging = g
        .peers
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.lag?)))
        .collect();
    g.messages = match leader_view {
        Some(l) => l.messages,
        None => obs.iter().filter_map(|o| o.messages).max(),
    };
    if let Some(l) = leader_view.filter(|l| l.idle_s.is_some_and(|i| i >= QUIET_S)) {
        if let Some(top) = l.last_seq {
            g.behind_own = obs
                .iter()
                .filter(|o| o.server != l.server && g.replicas.iter().any(|r| r == o.server))
                .filter_map(|o| Some((o.server.to_string(), top.checked_sub(o.last_seq?)?)))
                .filter(|(_, d)| *d > 0)
                .collect();
        }
    }
    g.healthy = g.leader_confirmed
        && g.missing.is_empty()
        && g.behind_own.is_empty()
        && g.peers.iter().all(|r| r.current == Some(true));
    let quorum = g.replicas.len() / 2 + 1;
    let able = if g.leader_confirmed {
        g.peers.iter().filter(|r| r.current == Some(true)).count()
    } else {
        g.peers.iter().filter(|r| r.holds).count()
    };
    g.below_quorum = able < quorum;

    // Sentences.
    if !g.missing.is_empty() {
        let parts: Vec<String> = g
            .peers
            .iter()
            .filter(|r| !r.holds)
            .map(|r| {
                if r.answered {
                    format!("{} (answered without it)", r.name)
                } else {
                    format!("{} (did not answer)", r.name)
                }
            })
            .collect();
        g.problems
            .push(format!("replicas missing: {}", parts.join(", ")));
    }
    if let (true, Some(l)) = (g.leader_confirmed, &g.leader) {
        if g.below_quorum {
            g.problems.push(format!(
                "only {able} of {} replicas current (quorum {quorum}): the leader {l} cannot \
                 commit and will step down",
                g.replicas.len()
            ));
        }
        if !g.not_current.is_empty() {
            g.problems.push(format!(
                "not current according to the leader {l}: {}",
                g.not_current.join(", ")
            ));
        }
        if !g.lagging.is_empty() {
            let lag: Vec<String> = g
                .lagging
                .iter()
                .map(|(n, d)| format!("{n} by {d}"))
                .collect();
            g.problems
                .push(format!("behind the leader: {}", lag.join(", ")));
        }
    }
    if let (false, Some(l), Some(top)) = (
        g.behind_own.is_empty(),
        leader_view,
        leader_view.and_then(|l| l.last_seq),
    ) {
        let who: Vec<String> = g
            .behind_own
            .iter()
            .map(|(n, d)| format!("{n} at {} ({d} behind)", top - d))
            .collect();
        let called_current: Vec<&str> = g
            .behind_own
            .keys()
            .filter(|n| !g.not_current.contains(n))
            .map(String::as_str)
            .collect();
        g.problems.push(format!(
            "by their own count, replicas lack messages the leader {} stored {:.0}s ago: {} \
             (leader at {top}){}",
            l.server,
            l.idle_s.unwrap_or_default(),
            who.join(", "),
            if called_current.is_empty() {
                String::new()
            } else {
                format!(
                    "; the leader calls {} current: a log that diverged from the leader's \
                     (nats-server 2.9 can keep one after a partition heals; with the \
                     account's credentials, `nats stream cluster peer-remove {} {}` makes \
                     the stream replace it with a fresh copy from the leader)",
                    called_current.join(", "),
                    g.stream,
                    called_current[0]
                )
            }
        ));
    }
    if !g.offline.is_empty() {
        g.problems
            .push(format!("reported offline: {}", g.offline.join(", ")));
    }
    if !g.strays.is_empty() {
        g.problems.push(format!(
            "held by servers outside the leader's replica set: {}",
            g.strays.join(", ")
        ));
    }
    g
}

fn names_where(peers: &[ReplicaFacts], f: impl Fn(&ReplicaFacts) -> bool) -> Vec<String> {
    peers
        .iter()
        .filter(|r| f(r))
        .map(|r| r.name.clone())
        .collect()
}

fn claims_text(claims: &BTreeMap<String, String>) -> String {
    claims
        .iter()
        .map(|(s, l)| format!("{s} names {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}
