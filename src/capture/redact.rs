//! Secrets out of everything a capture holds, before it is written: config texts with
//! [`crate::natsconf::redact`], monitoring JSON and the inventory by key and by URL, and, as a
//! last net, every secret the inventory knows replaced wherever it appears.

use crate::inventory::Inventory;
use crate::natsconf::REDACTED;
use regex::Regex;
use std::sync::LazyLock;

/// Keys whose values are secrets, in JSON and YAML (the same words the config redaction uses).
const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "token",
    "auth_token",
    "seed",
    "nkey_seed",
    "encryption_password",
    "srk_password",
    "system_nkey_seed_text",
];

static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/@,\[\]{}:]+)(:[^\s/@,\[\]{}]*)?@")
        .expect("static regex")
});
static SEED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bS[A-Z][A-Z2-7]{56}\b").expect("static regex"));

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str())
}

/// `scheme://user:pass@` → `scheme://user:[REDACTED]@` (a lone user may be a token: redacted),
/// and nkey seeds.
pub fn redact_text(s: &str) -> String {
    let s = URL_USERINFO.replace_all(s, |c: &regex::Captures<'_>| match c.get(3) {
        Some(_) => format!("{}{}:{REDACTED}@", &c[1], &c[2]),
        None => format!("{}{REDACTED}@", &c[1]),
    });
    SEED.replace_all(&s, REDACTED).into_owned()
}

fn redact_json_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret_key(k) && !x.is_null() {
                    *x = serde_json::Value::String(REDACTED.into());
                } else {
                    redact_json_value(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json_value),
        serde_json::Value::String(s) => {
            let r = redact_text(s);
            if r != *s {
                *s = r;
            }
        }
        _ => {}
    }
}

/// A monitoring body: JSON is redacted by key and by value and written back (same values
/// otherwise); anything else is redacted as text.
pub fn redact_body(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            redact_json_value(&mut v);
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| redact_text(body))
        }
        Err(_) => redact_text(&crate::natsconf::redact(body)),
    }
}

/// The probe's stdout: every config file it printed (`CFGFILE`, `CFGL` lines, `CFGEND`) goes
/// through the config redaction as a whole file (so `$VAR` references are followed), the other
/// lines through [`redact_text`].
pub fn redact_probe_stdout(stdout: &str) -> String {
    let mut out = String::with_capacity(stdout.len());
    let mut file: Option<String> = None;
    let flush = |out: &mut String, text: &str| {
        for l in crate::natsconf::redact(text).lines() {
            out.push_str("CFGL ");
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in stdout.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match (tag, file.as_mut()) {
            ("CFGL", Some(t)) => {
                t.push_str(rest);
                t.push('\n');
                continue;
            }
            ("CFGFILE", _) => {
                if let Some(t) = file.take() {
                    flush(&mut out, &t);
                }
                file = Some(String::new());
            }
            ("CFGEND", Some(_)) => {
                if let Some(t) = file.take() {
                    flush(&mut out, &t);
                }
            }
            _ => {}
        }
        out.push_str(&redact_text(line));
        out.push('\n');
    }
    if let Some(t) = file.take() {
        flush(&mut out, &t);
    }
    out
}

fn redact_yaml_value(v: &mut yaml_serde::Value) {
    match v {
        yaml_serde::Value::Mapping(m) => {
            for (k, x) in m.iter_mut() {
                if k.as_str().is_some_and(is_secret_key) && !x.is_null() {
                    *x = yaml_serde::Value::String(REDACTED.into());
                } else {
                    redact_yaml_value(x);
                }
            }
        }
        yaml_serde::Value::Sequence(a) => a.iter_mut().for_each(redact_yaml_value),
        yaml_serde::Value::String(s) => *s = redact_text(s),
        yaml_serde::Value::Tagged(t) => redact_yaml_value(&mut t.value),
        _ => {}
    }
}

/// The inventory's YAML with secret values replaced (comments are lost; the shape stays, so
/// it still loads). Unparseable YAML cannot come here: the inventory was loaded from it.
pub fn redact_inventory(text: &str) -> Result<String, String> {
    let mut v: yaml_serde::Value =
        yaml_serde::from_str(text).map_err(|e| format!("inventory: {e}"))?;
    redact_yaml_value(&mut v);
    yaml_serde::to_string(&v).map_err(|e| format!("inventory: {e}"))
}

/// The inventory as a capture carries it: redacted, and loadable on another machine. An
/// `ssh.config` file is not in the capture, so the reference goes and each node's `host` is
/// what was resolved with it (`HostName`); the rest of what it gave only matters for SSH.
pub fn portable_inventory(text: &str, inv: &Inventory) -> Result<String, String> {
    let mut v: yaml_serde::Value =
        yaml_serde::from_str(&redact_inventory(text)?).map_err(|e| format!("inventory: {e}"))?;
    let drop_config = |m: Option<&mut yaml_serde::Value>| {
        if let Some(yaml_serde::Value::Mapping(ssh)) = m {
            ssh.remove("config");
        }
    };
    if let Some(d) = v.get_mut("defaults") {
        drop_config(d.get_mut("ssh"));
    }
    if let Some(yaml_serde::Value::Sequence(nodes)) = v.get_mut("nodes") {
        for n in nodes.iter_mut() {
            drop_config(n.get_mut("ssh"));
            let name = n.get("name").and_then(|x| x.as_str()).map(str::to_string);
            if let (Some(node), yaml_serde::Value::Mapping(m)) =
                (inv.nodes.iter().find(|x| Some(&x.name) == name.as_ref()), n)
            {
                m.insert("host".into(), redact_text(&node.host).into());
            }
        }
    }
    yaml_serde::to_string(&v).map_err(|e| format!("inventory: {e}"))
}

/// Every secret the inventory holds in memory (system-account passwords): the last net.
pub fn known_secrets(inv: &Inventory) -> Vec<String> {
    let mut s: Vec<String> = inv
        .nodes
        .iter()
        .filter_map(|n| n.nats.system_user.as_ref()?.password().map(str::to_string))
        .filter(|p| p.len() >= 4)
        .collect();
    s.sort();
    s.dedup();
    s
}

/// `text` with each of `secrets` replaced.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |acc, p| acc.replace(p.as_str(), REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_and_secret_keys_are_removed_from_json() {
        let body = r#"{"cluster":{"urls":["nats-route://route:s3cret@n2:6222","n3:6222"]},"authorization":{"user":"a","password":"hunter22"},"token":"tok123","n":5}"#;
        let r = redact_body(body);
        assert!(
            !r.contains("s3cret") && !r.contains("hunter22") && !r.contains("tok123"),
            "{r}"
        );
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(
            v["cluster"]["urls"][0],
            "nats-route://route:[REDACTED]@n2:6222"
        );
        assert_eq!(v["cluster"]["urls"][1], "n3:6222");
        assert_eq!(v["n"], 5);
        assert_eq!(v["authorization"]["user"], "a");
    }

    #[test]
    fn probe_configs_are_redacted_as_whole_files_and_keep_their_lines() {
        let out = "NRS_BEGIN\nCFGFILE /etc/nats.conf\nCFGL pw = \"pa55word\"\nCFGL cluster {\nCFGL   authorization { user: route, password: $pw }\nCFGL   routes: [\"nats-route://route:pa55word@n2:6222\"]\nCFGL }\nCFGEND\nTCP n2 10.0.0.2 6222 ok\nNRS_END\n";
        let r = redact_probe_stdout(out);
        assert!(!r.contains("pa55word"), "{r}");
        assert_eq!(r.lines().count(), out.lines().count());
        assert!(r.contains("TCP n2 10.0.0.2 6222 ok"));
        let a = crate::nats::probe::ShellReport::parse(out, "/d", 6222);
        let b = crate::nats::probe::ShellReport::parse(&r, "/d", 6222);
        assert_eq!(a.config, b.config, "the config facts do not change");
        assert_eq!(a.tcp, b.tcp);
    }

    #[test]
    fn inventory_passwords_are_removed_and_it_still_loads() {
        let text = "cluster: c\ndefaults:\n  nats:\n    system_user: {user: sys, password: topsecret9}\nnodes:\n  - {name: n1, host: 127.0.0.1}\n";
        let r = redact_inventory(text).unwrap();
        assert!(!r.contains("topsecret9"), "{r}");
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ssh_config");
        std::fs::write(&cfg, "Host n1\n  HostName 10.9.9.1\n").unwrap();
        let with_cfg = format!(
            "cluster: c\ndefaults:\n  ssh: {{config: {}}}\nnodes:\n  - {{name: n1, host: n1}}\n",
            cfg.display()
        );
        let live = Inventory::parse(std::path::Path::new("i.yaml"), &with_cfg).unwrap();
        assert_eq!(live.nodes[0].host, "10.9.9.1");
        let p = portable_inventory(&with_cfg, &live).unwrap();
        std::fs::remove_file(&cfg).unwrap();
        let off = Inventory::parse(std::path::Path::new("i.yaml"), &p).unwrap();
        assert_eq!(off.nodes[0].host, "10.9.9.1", "{p}");
        let inv = Inventory::parse(std::path::Path::new("i.yaml"), &r).unwrap();
        assert_eq!(inv.nodes[0].name, "n1");
        let orig = Inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        assert_eq!(known_secrets(&orig), vec!["topsecret9".to_string()]);
        assert_eq!(
            scrub("x topsecret9 y", &known_secrets(&orig)),
            "x [REDACTED] y"
        );
    }
}
