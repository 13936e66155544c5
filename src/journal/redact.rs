//! Keeping secrets out of the journal (SPEC §4). Every event passes through a [`Redactor`]
//! before it is hashed and written.
//!
//! Three rules, each replacing with `[REDACTED]`:
//! - known secret values (added at runtime: `--var` values and inventory fields whose key looks
//!   secret) anywhere in any string;
//! - inside maps (`vars`, nested objects of a facts summary): the value of a key that looks
//!   secret (`password|passwd|token|secret|key|credential`, case-insensitive);
//! - patterns in any string: `password=…`, `Authorization: Bearer …`, userinfo in URLs,
//!   NATS nkey seeds, PEM private keys, plus configured ones.
//!
//! Fields that hold hashes (`*sha256`, `hash`, `fingerprint`) and the `event` tag are never
//! touched: a secret that happens to occur inside a hex digest must not destroy the digest.

use super::event::Event;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The replacement text.
pub const REDACTED: &str = "[REDACTED]";

/// Secret values shorter than this are not replaced inside free text (a one-letter "secret"
/// would shred every record); they are still redacted where their key names them.
pub const MIN_SECRET_LEN: usize = 4;

const SECRET_KEY: &str = r"(?i)(password|passwd|token|secret|key|credential)";
const HASH_KEY: &str = r"(?i)(sha256|^hash$|_hash$|fingerprint|digest)";

/// Default patterns: (regex, replacement). Replacements keep the label so the report still
/// reads `password=[REDACTED]`.
const DEFAULT_PATTERNS: &[(&str, &str)] = &[
    (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
        "[REDACTED]",
    ),
    (
        r#"(?i)\b(authorization:\s*)[^\s'"]+(\s+[^\s'"]+)?"#,
        "${1}[REDACTED]",
    ),
    (r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+", "${1}[REDACTED]"),
    (
        r#"(?i)\b((?:[a-z0-9_]*_)?(?:password|passwd|pass|pwd|token|secret|api_?key|credentials?)"?\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)"#,
        "${1}[REDACTED]",
    ),
    (
        r"(?i)(--?(?:password|passwd|pass|token|secret|creds|api-key)[ =])(\S+)",
        "${1}[REDACTED]",
    ),
    (
        r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@",
        "${1}[REDACTED]@",
    ),
    (r"\bS[UAONCXP][A-Z2-7]{50,}\b", "[REDACTED]"),
];

/// Replaces secrets by `[REDACTED]` in events.
#[derive(Debug, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
    patterns: Vec<(Regex, String)>,
    secret_key: Regex,
    hash_key: Regex,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

impl Redactor {
    /// The default rules, no known secret values yet.
    pub fn new() -> Redactor {
        let compile = |re: &str| Regex::new(re).expect("built-in redaction regex compiles");
        Redactor {
            secrets: Vec::new(),
            patterns: DEFAULT_PATTERNS
                .iter()
                .map(|(re, rep)| (compile(re), rep.to_string()))
                .collect(),
            secret_key: compile(SECRET_KEY),
            hash_key: compile(HASH_KEY),
        }
    }

    /// A value that must never reach the journal.
    pub fn add_secret(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.trim().is_empty() || self.secrets.contains(&value) {
            return;
        }
        self.secrets.push(value);
        // Longest first, so a secret containing another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Adds the values of every entry whose key looks secret (`--var`, inventory fields).
    pub fn add_secrets_from_vars<'a>(
        &mut self,
        vars: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) {
        for (k, v) in vars {
            if self.is_secret_key(k) {
                self.add_secret(v.clone());
            }
        }
    }

    /// Whether a map key names a secret (`db_password`, `API_TOKEN`, `ssh_key`), excluding
    /// hash-like keys (`key_sha256`, `fingerprint`).
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.secret_key.is_match(key) && !self.hash_key.is_match(key)
    }

    /// Redacts known secret values and patterns in a string.
    pub fn redact_str(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in &self.secrets {
            if secret.len() >= MIN_SECRET_LEN && out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        for (re, rep) in &self.patterns {
            if re.is_match(&out) {
                out = re.replace_all(&out, rep.as_str()).into_owned();
            }
        }
        out
    }

    /// Redacts every string of an event except hash fields and the tag.
    pub fn redact_event(&self, event: Event) -> Event {
        let Ok(Value::Object(fields)) = serde_json::to_value(&event) else {
            return event;
        };
        let mut out = Map::new();
        for (k, v) in fields {
            let v = if k == "event" || self.hash_key.is_match(&k) {
                v
            } else {
                self.redact_value(v, false)
            };
            out.insert(k, v);
        }
        // Redaction only rewrites strings, so the shape still fits the variant. Should that
        // ever fail, the original (possibly secret-bearing) event must not be written.
        match serde_json::from_value(Value::Object(out)) {
            Ok(ev) => ev,
            Err(_) => Event::Interrupted {
                reason: format!("{REDACTED} (event {} could not be redacted)", event.name()),
            },
        }
    }

    /// Redacts a map of variables: secret-looking keys lose their values entirely.
    pub fn redact_vars(&self, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if self.is_secret_key(k) {
                        REDACTED.to_string()
                    } else {
                        self.redact_str(v)
                    },
                )
            })
            .collect()
    }

    /// `whole`: the value sits under a secret-looking key; every string in it goes.
    fn redact_value(&self, value: Value, whole: bool) -> Value {
        match value {
            Value::String(s) if whole => Value::String(if s.is_empty() {
                s
            } else {
                REDACTED.to_string()
            }),
            Value::String(s) => Value::String(self.redact_str(&s)),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.redact_value(v, whole))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = if self.hash_key.is_match(&k) && !whole {
                            v
                        } else {
                            let secret = whole || self.is_secret_key(&k);
                            self.redact_value(v, secret)
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(vars: &[(&str, &str)]) -> Event {
        Event::IncidentOpened {
            operator: "op@h".into(),
            tool_version: "0.1.0".into(),
            runbook: "r".into(),
            runbook_sha256: "ab".repeat(32),
            runbook_source: "builtin".into(),
            inventory: "inv.yaml".into(),
            inventory_sha256: "cd".repeat(32),
            cluster: "c".into(),
            rehearsal: false,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            node_limit: vec![],
        }
    }

    #[test]
    fn vars_with_secret_keys_are_redacted_others_kept() {
        let r = Redactor::new();
        let ev = r.redact_event(opened(&[
            ("DB_Password", "x"),
            ("api_token", "t0k3n"),
            ("node", "n1"),
            ("ssh_key", "k"),
        ]));
        let Event::IncidentOpened {
            vars,
            runbook_sha256,
            ..
        } = ev
        else {
            panic!()
        };
        assert_eq!(vars["DB_Password"], REDACTED);
        assert_eq!(vars["api_token"], REDACTED);
        assert_eq!(vars["ssh_key"], REDACTED);
        assert_eq!(vars["node"], "n1");
        assert_eq!(runbook_sha256, "ab".repeat(32));
    }

    #[test]
    fn secret_values_and_patterns_in_commands() {
        let mut r = Redactor::new();
        r.add_secret("s3cr3t-value");
        let cases = [
            (
                "nats --user a --password s3cr3t-value server ls",
                "nats --user a --password [REDACTED] server ls",
            ),
            (
                "curl -H 'Authorization: Bearer abc.def' http://x",
                "curl -H 'Authorization: [REDACTED]' http://x",
            ),
            ("run password=hunter2 now", "run password=[REDACTED] now"),
            ("TOKEN: abc123", "TOKEN: [REDACTED]"),
            (
                "nats -s nats://alice:pw123@n1:4222 rtt",
                "nats -s nats://alice:[REDACTED]@n1:4222 rtt",
            ),
            ("echo fine", "echo fine"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact_str(input), want, "{input}");
        }
    }

    #[test]
    fn hash_fields_are_never_touched() {
        let mut r = Redactor::new();
        let digest = "0123456789abcdef".repeat(4);
        r.add_secret("89abcdef");
        let ev = Event::BackupMade {
            step: "backup".into(),
            node: "n1".into(),
            path: "/backup/89abcdef.tgz".into(),
            size: 10,
            sha256: digest.clone(),
            source: "/data/jetstream".into(),
        };
        let Event::BackupMade { sha256, path, .. } = r.redact_event(ev) else {
            panic!()
        };
        assert_eq!(sha256, digest);
        assert_eq!(path, "/backup/[REDACTED].tgz");
        assert!(!r.is_secret_key("key_sha256"));
        assert!(!r.is_secret_key("fingerprint"));
        assert!(r.is_secret_key("monitor_token"));
    }

    #[test]
    fn nested_facts_keys() {
        let r = Redactor::new();
        let ev = Event::FactsGathered {
            step: "facts".into(),
            summary: serde_json::json!({"n1": {"auth": {"password": "pw", "user": "u"}, "config_sha256": "ff", "port": 4222}}),
        };
        let Event::FactsGathered { summary, .. } = r.redact_event(ev) else {
            panic!()
        };
        assert_eq!(summary["n1"]["auth"]["password"], REDACTED);
        assert_eq!(summary["n1"]["auth"]["user"], "u");
        assert_eq!(summary["n1"]["config_sha256"], "ff");
        assert_eq!(summary["n1"]["port"], 4222);
    }

    #[test]
    fn short_secrets_only_by_key() {
        let mut r = Redactor::new();
        r.add_secret("ab");
        assert_eq!(r.redact_str("cabbage"), "cabbage");
    }

    #[test]
    fn nkey_seed_and_pem() {
        let r = Redactor::new();
        let seed = format!("SUA{}", "B".repeat(55));
        assert_eq!(
            r.redact_str(&format!("seed {seed} end")),
            "seed [REDACTED] end"
        );
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(r.redact_str(pem), "[REDACTED]");
    }
}
