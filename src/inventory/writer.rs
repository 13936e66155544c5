//! A small YAML writer for inventories with a comment per field (`inventory init`). It
//! writes only what the inventory format needs: nested maps, scalars, one list of nodes.

/// A scalar value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Str(String),
    Int(u64),
    Bool(bool),
}

/// `key: value  # note`, or `key:` and its nested fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub key: String,
    pub value: FieldValue,
    /// Why this value: where it was read, or that it is assumed. Empty: no comment.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Scalar(Scalar),
    Map(Vec<Field>),
}

impl Field {
    pub fn str(key: &str, value: impl Into<String>, note: impl Into<String>) -> Field {
        Field::scalar(key, Scalar::Str(value.into()), note)
    }

    pub fn int(key: &str, value: u64, note: impl Into<String>) -> Field {
        Field::scalar(key, Scalar::Int(value), note)
    }

    pub fn bool(key: &str, value: bool, note: impl Into<String>) -> Field {
        Field::scalar(key, Scalar::Bool(value), note)
    }

    pub fn map(key: &str, fields: Vec<Field>, note: impl Into<String>) -> Field {
        Field {
            key: key.to_string(),
            value: FieldValue::Map(fields),
            note: note.into(),
        }
    }

    fn scalar(key: &str, v: Scalar, note: impl Into<String>) -> Field {
        Field {
            key: key.to_string(),
            value: FieldValue::Scalar(v),
            note: note.into(),
        }
    }
}

/// One entry of `nodes:` with the comment lines written above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeEntry {
    pub comments: Vec<String>,
    pub fields: Vec<Field>,
}

impl NodeEntry {
    /// The string value of a top-level field (e.g. `name`).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| match &f.value {
                FieldValue::Scalar(Scalar::Str(s)) => Some(s.as_str()),
                _ => None,
            })
    }
}

/// A whole inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// Comment lines at the top.
    pub header: Vec<String>,
    /// Top-level fields before `nodes` (`cluster`, `defaults`).
    pub top: Vec<Field>,
    pub nodes: Vec<NodeEntry>,
}

/// A YAML scalar: plain when safe, double-quoted (JSON string rules, valid YAML) otherwise.
pub fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c))
        && !s.starts_with(['-', '~', '.'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn scalar_text(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => yaml_str(s),
        Scalar::Int(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }
}

/// A comment on one line (line breaks in what a server or user wrote would end it).
fn one_line(note: &str) -> String {
    note.split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn push_comment(out: &mut String, note: &str) {
    let n = one_line(note);
    if !n.is_empty() {
        out.push_str("  # ");
        out.push_str(&n);
    }
}

/// `lead` for the first line (e.g. `  - `), `indent` for the rest.
fn render_fields(out: &mut String, fields: &[Field], lead: &str, indent: &str) {
    for (i, f) in fields.iter().enumerate() {
        out.push_str(if i == 0 { lead } else { indent });
        out.push_str(&yaml_str(&f.key));
        out.push(':');
        match &f.value {
            FieldValue::Scalar(v) => {
                out.push(' ');
                out.push_str(&scalar_text(v));
                push_comment(out, &f.note);
                out.push('\n');
            }
            FieldValue::Map(children) => {
                if children.is_empty() {
                    out.push_str(" {}");
                }
                push_comment(out, &f.note);
                out.push('\n');
                let inner = format!("{indent}  ");
                render_fields(out, children, &inner, &inner);
            }
        }
    }
}

impl Document {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str(format!("# {}", one_line(h)).trim_end());
            out.push('\n');
        }
        render_fields(&mut out, &self.top, "", "");
        out.push_str("nodes:\n");
        for n in &self.nodes {
            for c in &n.comments {
                out.push_str(format!("  # {}", one_line(c)).trim_end());
                out.push('\n');
            }
            render_fields(&mut out, &n.fields, "  - ", "    ");
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use std::path::Path;

    fn doc() -> Document {
        Document {
            header: vec!["Written by `nats-rescue inventory init`".into()],
            top: vec![
                Field::str("cluster", "prod east", "cluster.name in n1's config"),
                Field::map(
                    "defaults",
                    vec![Field::map(
                        "ssh",
                        vec![
                            Field::str("user", "ops", "--ssh-user"),
                            Field::bool("sudo", true, "--sudo"),
                            Field::str("known_hosts", "~/.ssh/known_hosts", ""),
                        ],
                        "",
                    )],
                    "",
                ),
            ],
            nodes: vec![
                NodeEntry {
                    comments: vec!["n1: checked\nover ssh".into()],
                    fields: vec![
                        Field::str("name", "n1", "server_name from /varz"),
                        Field::str("host", "10.0.0.1", "the seed"),
                        Field::map(
                            "nats",
                            vec![
                                Field::int("monitor_port", 8222, "http_port in the config"),
                                Field::str("store_dir", "/var/lib/nats", "#not a comment"),
                                Field::map(
                                    "system_user",
                                    vec![
                                        Field::str("user", "sys", ""),
                                        Field::str("password_env", "NATS_SYS_PASSWORD", "set it"),
                                    ],
                                    "the password is not copied",
                                ),
                                Field::map(
                                    "service",
                                    vec![
                                        Field::str("start", "systemctl start nats-server", ""),
                                        Field::str("stop", "'/x y/ctl' stop", ""),
                                        Field::str("status", "true", ""),
                                    ],
                                    "detected",
                                ),
                            ],
                            "",
                        ),
                    ],
                },
                NodeEntry {
                    comments: vec![],
                    fields: vec![
                        Field::str("name", "n2", ""),
                        Field::str("host", "yes", "a word YAML would read as a bool"),
                    ],
                },
            ],
        }
    }

    #[test]
    fn rendered_document_loads_with_every_value_and_comment() {
        let text = doc().render();
        let inv = Inventory::parse(Path::new("init.yaml"), &text).unwrap_or_else(|e| {
            panic!("{e}\n{text}");
        });
        assert_eq!(inv.cluster, "prod east");
        assert_eq!(inv.nodes.len(), 2);
        let n1 = &inv.nodes[0];
        assert_eq!(n1.ssh.user, "ops");
        assert!(n1.ssh.sudo);
        assert_eq!(n1.nats.monitor_port, 8222);
        assert_eq!(n1.nats.store_dir, "/var/lib/nats");
        assert_eq!(n1.nats.service.stop, "'/x y/ctl' stop");
        assert_eq!(n1.nats.service.status, "true");
        let u = n1.nats.system_user.as_ref().unwrap();
        assert_eq!(u.user, "sys");
        assert_eq!(inv.nodes[1].host, "yes");
        assert!(text.contains("    monitor_port: 8222  # http_port in the config\n"));
        assert!(text.contains("  # n1: checked over ssh\n  - name: n1  # server_name"));
        assert!(text.contains("      system_user:  # the password is not copied\n"));
        assert!(text.starts_with("# Written by `nats-rescue inventory init`\ncluster:"));
    }

    #[test]
    fn scalars_that_yaml_would_retype_are_quoted() {
        for s in [
            "true", "No", "null", "8222", "1.5", "", "a: b", "#x", "-x", "~",
        ] {
            let q = yaml_str(s);
            let back: String = yaml_serde::from_str(&q).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(back, s, "{q}");
        }
        assert_eq!(
            yaml_str("/etc/nats/nats-server.conf"),
            "/etc/nats/nats-server.conf"
        );
    }
}
