//! The built-in `rewrite_routes` action: on each node, read the config (and its includes),
//! point `cluster.routes` at the inventory's peers while keeping the scheme and credentials
//! of the node's current routes, splice only the routes array (natsconf), have the node's own
//! `nats.server_bin -t -c` accept the result, then replace the file atomically (`routes.sh`).
//!
//! Secrets: the new file text holds the route passwords. It is sent, never journaled: the
//! intent carries the script with the text redacted, results are redacted, and what the
//! operator sees are redacted route lists.

use super::command::{result_event, unreachable_event};
use super::receipt;
use super::{action_id, Engine, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::{Inventory, Node};
use crate::journal::Event;
use crate::nats::configfacts::CapturedConfig;
use crate::nats::probe::ShellReport;
use crate::nats::routes::route_host;
use crate::natsconf::{self, Endpoint, MemFs, RouteUrl, Setting};
use crate::runbook::template::quote;
use crate::runbook::{RewriteRoutesSpec, Step};
use crate::transport::{Captured, ExecOutput, RemoteCommand};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const WRITE_SCRIPT: &str = include_str!("routes.sh");
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints the config file and its includes with `CFGFILE`/`CFGL` tags (read-only).
fn read_script(path: &str) -> String {
    format!(
        "CONFIG_FILE={}\n{}",
        quote(path),
        r#"cfg_print() {
  if [ ! -r "$1" ]; then echo "CFGMISSING $1"; return; fi
  echo "CFGFILE $1"
  sed 's/^/CFGL /' "$1"
  echo "CFGEND"
  [ "$2" -ge 4 ] && return
  for inc in $(sed -n 's/^[ \t]*include[ \t:=]*["'"'"']\{0,1\}\([^"'"'"' \t;]*\).*/\1/p' "$1" 2>/dev/null); do
    case "$inc" in /*) ;; *) inc="${1%/*}/$inc" ;; esac
    cfg_print "$inc" $(($2 + 1))
  done
}
echo "NRS_BEGIN 1"
cfg_print "$CONFIG_FILE" 0
echo "NRS_END"
"#
    )
}

/// What the action will do on one node, computed from the config as read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Planned {
    /// The file that holds the routes.
    pub file: String,
    /// Its new text (holds secrets).
    pub text: String,
    /// Current routes, redacted.
    pub before: Vec<String>,
    /// New routes, redacted.
    pub after: Vec<String>,
    /// The routes already point at exactly the desired endpoints.
    pub already: bool,
    /// `host:port` the new routes point at.
    pub endpoints: Vec<String>,
    /// `host:port` of current routes that the new ones drop.
    pub dropped: Vec<String>,
    /// `$VARIABLES` the config files use (for the server's environment during the test).
    pub vars: Vec<String>,
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_start_matches('[')
        .trim_end_matches(']')
        .eq_ignore_ascii_case(b.trim_start_matches('[').trim_end_matches(']'))
}

/// Plans the rewrite for `node` from its captured config.
pub(super) fn plan(inv: &Inventory, node: &Node, cap: &CapturedConfig) -> Result<Planned, String> {
    let Some((main, _)) = cap.files.first() else {
        return Err(match cap.missing.first() {
            Some(p) => format!("cannot read {p}"),
            None => "the config file could not be read".into(),
        });
    };
    let mut fs = MemFs::new();
    for (p, t) in &cap.files {
        fs.insert(p.clone(), t.clone());
    }
    let conf = natsconf::parse_file(Path::new(main), &fs).map_err(|e| {
        format!(
            "cannot parse the config: {}",
            natsconf::redact(&e.to_string())
        )
    })?;
    let cluster = conf
        .cluster()
        .ok_or_else(|| format!("{main} has no cluster block"))?;
    let current: Vec<RouteUrl> = match cluster.routes() {
        Some(Setting::Known(r)) => r.urls(),
        _ => Vec::new(),
    };
    // Keep the config's habit: the Helm chart lists the server itself, classic configs do not.
    let me = route_host(node);
    let lists_self = current
        .iter()
        .any(|u| same_host(&u.host, me) || same_host(&u.host, &node.host));
    let desired: Vec<Endpoint> = inv
        .nodes
        .iter()
        .filter(|x| lists_self || x.name != node.name)
        .map(|x| Endpoint::new(route_host(x), x.nats.cluster_port))
        .collect();
    let key = |h: &str, p: u16| format!("{}:{p}", h.to_ascii_lowercase());
    let want: BTreeSet<String> = desired.iter().map(|e| key(&e.host, e.port)).collect();
    let have: BTreeSet<String> = current
        .iter()
        .filter_map(|u| Some(key(&u.host, u.port?)))
        .collect();
    let all_readable = match cluster.routes() {
        Some(Setting::Known(r)) => r.routes.iter().all(|x| x.url.is_ok()),
        _ => false,
    };
    let new_routes = cluster.build_routes(&desired);
    let rewritten = conf
        .rewrite_routes(&new_routes)
        .map_err(|e| e.to_string())?;
    let redact_url =
        |s: &String| RouteUrl::parse(s).map_or_else(|_| natsconf::redact(s), |u| u.redacted());
    let var_re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").map_err(|e| e.to_string())?;
    let vars: BTreeSet<String> = cap
        .files
        .iter()
        .flat_map(|(_, t)| {
            var_re
                .captures_iter(t)
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Planned {
        file: rewritten.path.to_string_lossy().into_owned(),
        text: rewritten.text,
        before: current.iter().map(RouteUrl::redacted).collect(),
        after: new_routes.iter().map(redact_url).collect(),
        already: all_readable && want == have,
        endpoints: want.iter().cloned().collect(),
        dropped: have.difference(&want).cloned().collect(),
        vars: vars.into_iter().collect(),
    })
}

/// What the write does, in one line (shown to the operator; the script's first line).
pub(super) fn describe(node: &Node, p: &Planned) -> String {
    format!(
        "rewrite the routes array of {}, test it with `{} -t -c`, replace the file",
        p.file, node.nats.server_bin
    )
}

/// The write script for `p`; `redacted` puts the redacted text in (for the journal).
pub(super) fn write_script(node: &Node, p: &Planned, redacted: bool) -> String {
    let text = if redacted {
        natsconf::redact(&p.text)
    } else {
        p.text.clone()
    };
    let mut s = format!(
        "# {}\nNEW_TEXT={}\nset -- {} {} {}",
        describe(node, p).replace('\n', " "),
        quote(&text),
        quote(&p.file),
        quote(&node.nats.server_bin),
        node.nats.cluster_port
    );
    for v in &p.vars {
        s.push(' ');
        s.push_str(&quote(v));
    }
    s.push('\n');
    s.push_str(WRITE_SCRIPT);
    s
}

/// Read-only: exit 0 when the file's routes already name every endpoint and none dropped.
pub(super) fn check_script(p: &Planned) -> String {
    let f = quote(&p.file);
    let mut s = String::new();
    for e in &p.endpoints {
        s.push_str(&format!("grep -qiF -- {} {f} && ", quote(e)));
    }
    for e in &p.dropped {
        s.push_str(&format!("! grep -qiF -- {} {f} && ", quote(e)));
    }
    s.push_str("true");
    s
}

/// For the confirmation's preview.
pub(super) fn preview(inv: &Inventory, node: &Node) -> String {
    let peers: Vec<String> = inv
        .nodes
        .iter()
        .map(|x| format!("{}:{}", route_host(x), x.nats.cluster_port))
        .collect();
    format!(
        "rewrite cluster.routes to {} (scheme and credentials kept), test with `{} -t -c`, replace the file atomically",
        peers.join(", "),
        node.nats.server_bin
    )
}

fn redacted_output(out: &ExecOutput) -> ExecOutput {
    let r = |c: &Captured| Captured {
        text: natsconf::redact(&c.text),
        ..c.clone()
    };
    ExecOutput {
        stdout: r(&out.stdout),
        stderr: r(&out.stderr),
        ..out.clone()
    }
}

impl Engine<'_> {
    /// Reads the node's config and plans the rewrite (read-only, not journaled: the output
    /// holds secrets).
    fn read_and_plan(
        &self,
        node: &Node,
        path: &str,
        r: &RewriteRoutesSpec,
    ) -> Result<Planned, String> {
        let mut cmd = RemoteCommand::new(read_script(path), node.ssh.command_timeout);
        cmd.sudo = r.privileged && node.ssh.sudo;
        let out = self
            .transport
            .exec(node, &cmd)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        if !out.stdout.text.contains("NRS_END") {
            return Err(format!(
                "cannot read {path} (exit {:?}): {}",
                out.exit_code,
                natsconf::redact(out.stderr.text.trim())
            ));
        }
        let rep = ShellReport::parse(&out.stdout.text, "", node.nats.cluster_port);
        plan(self.inv, node, &rep.config_capture)
    }

    pub(super) fn rewrite_routes(
        &mut self,
        step: &Step,
        r: &RewriteRoutesSpec,
        targets: Vec<Node>,
    ) -> StepResult {
        let id = step.id.as_str();
        self.reset_capture(id);
        let mut failures = Vec::new();
        for n in &targets {
            let action = action_id(id, &n.name);
            if !self.cfg.rehearsal && self.prior.finished.contains(&action) {
                self.note(format!(
                    "{}: routes already rewritten in this incident (journal)",
                    n.name
                ));
                continue;
            }
            let ctx = self.node_ctx(n, None);
            let path = match &r.config_file {
                Some(t) => self.text(id, "`rewrite_routes.config_file`", t, &ctx)?,
                None => n.nats.config_file.clone(),
            };
            let planned = match self.read_and_plan(n, &path, r) {
                Ok(p) => p,
                Err(e) if self.cfg.rehearsal => {
                    self.ui(UiEvent::Command {
                        node: n.name.clone(),
                        command: format!("{} ({e})", preview(self.inv, n)),
                        mutating: true,
                        rehearsal: true,
                    });
                    continue;
                }
                Err(e) => {
                    self.ui(UiEvent::Bad(format!("{}: {e}", n.name)));
                    self.capture(id, &n.name, json!({"ok": false, "error": e}));
                    failures.push(n.name.clone());
                    continue;
                }
            };
            let diff = format!(
                "{}: routes in {}:\n    now:   {}\n    after: {}",
                n.name,
                planned.file,
                if planned.before.is_empty() {
                    "(none)".to_string()
                } else {
                    planned.before.join(", ")
                },
                planned.after.join(", ")
            );
            if planned.already {
                self.ui(UiEvent::Good(format!(
                    "{}: the routes in {} already point at the peers; not rewritten",
                    n.name, planned.file
                )));
                self.capture(
                    id,
                    &n.name,
                    json!({"ok": true, "changed": false, "file": planned.file, "routes": planned.after}),
                );
                continue;
            }
            let journaled = write_script(n, &planned, true);
            if self.cfg.rehearsal {
                self.note(diff);
                self.ui(UiEvent::Command {
                    node: n.name.clone(),
                    command: describe(n, &planned),
                    mutating: true,
                    rehearsal: true,
                });
                self.journal(Event::ActionRehearsed {
                    action,
                    step: id.into(),
                    node: n.name.clone(),
                    command: journaled,
                })?;
                continue;
            }
            self.note(diff);
            self.journal(Event::ActionIntent {
                action: action.clone(),
                step: id.into(),
                node: n.name.clone(),
                command: journaled,
                mutating: true,
                idempotent: true,
                check: Some(check_script(&planned)),
            })?;
            self.ui(UiEvent::Command {
                node: n.name.clone(),
                command: describe(n, &planned),
                mutating: true,
                rehearsal: false,
            });
            let start = std::time::Instant::now();
            let cmd = RemoteCommand {
                script: receipt::wrap(
                    &self.cfg.incident,
                    &action,
                    &write_script(n, &planned, false),
                ),
                timeout: r.timeout.unwrap_or(DEFAULT_TIMEOUT),
                sudo: r.privileged && n.ssh.sudo,
            };
            match self.transport.exec(n, &cmd) {
                Ok(out) => {
                    let out = redacted_output(&out);
                    self.journal(result_event(&action, id, &n.name, &out))?;
                    if out.success() {
                        self.ui(UiEvent::Good(format!(
                            "{}: {} rewritten ({})",
                            n.name,
                            planned.file,
                            planned.after.join(", ")
                        )));
                        self.capture(
                            id,
                            &n.name,
                            json!({"ok": true, "changed": true, "file": planned.file, "routes": planned.after}),
                        );
                    } else {
                        let why = if out.stderr.text.trim().is_empty() {
                            format!("exit {:?}", out.exit_code)
                        } else {
                            out.stderr.text.trim().to_string()
                        };
                        self.ui(UiEvent::Bad(format!("{}: {why}", n.name)));
                        self.capture(id, &n.name, json!({"ok": false, "error": why}));
                        failures.push(n.name.clone());
                    }
                }
                Err(e) => {
                    self.journal(unreachable_event(&action, id, &n.name, &e, start.elapsed()))?;
                    self.ui(UiEvent::Bad(format!("{}: {e}", n.name)));
                    self.capture(id, &n.name, json!({"ok": false, "error": e.to_string()}));
                    failures.push(n.name.clone());
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Stop(Outcome::Failed(format!(
                "rewrite_routes `{id}` failed on {}",
                failures.join(", ")
            ))))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        let text = "cluster: c\ndefaults:\n  nats: {cluster_port: 6222, server_bin: /opt/nats-server}\nnodes:\n  - {name: n1, host: 10.9.0.11, nats: {cluster_host: n1}}\n  - {name: n2, host: 10.9.0.12, nats: {cluster_host: n2}}\n  - {name: n3, host: 10.9.0.13, nats: {cluster_host: n3}}\n";
        Inventory::parse(Path::new("i.yaml"), text).unwrap()
    }

    fn cap(path: &str, text: &str) -> CapturedConfig {
        CapturedConfig {
            files: vec![(path.into(), text.into())],
            missing: vec![],
        }
    }

    const CLASSIC: &str = "# n1\nserver_name: n1\ncluster {\n  listen: \"10.9.0.11:6222\"\n  authorization {\n    user: \"route\"\n    password: \"Pw-s3cret\"\n  }\n  routes: [\n    \"nats-route://route:Pw-s3cret@n1:6299\"\n    \"nats-route://route:Pw-s3cret@n2:6299\"\n    \"nats-route://route:Pw-s3cret@n3:6299\"\n  ]\n}\n";

    #[test]
    fn classic_routes_keep_credentials_and_only_the_array_changes() {
        let inv = inv();
        let p = plan(&inv, &inv.nodes[0], &cap("/etc/n1.conf", CLASSIC)).unwrap();
        assert!(!p.already);
        assert_eq!(p.file, "/etc/n1.conf");
        // the config listed itself: the new routes do too
        assert_eq!(p.endpoints, vec!["n1:6222", "n2:6222", "n3:6222"]);
        assert_eq!(p.dropped, vec!["n1:6299", "n2:6299", "n3:6299"]);
        assert!(
            p.text.contains("\"nats-route://route:Pw-s3cret@n2:6222\""),
            "{}",
            p.text
        );
        assert_eq!(
            p.text
                .replace("2:6222\"", "2:6299\"")
                .replace("1:6222\"", "1:6299\"")
                .replace("3:6222\"", "3:6299\"")
                .replace("11:6299", "11:6222"),
            CLASSIC,
            "only the route ports changed"
        );
        assert_eq!(p.after[1], "nats-route://route:[REDACTED]@n2:6222");
        let journaled = write_script(&inv.nodes[0], &p, true);
        assert!(!journaled.contains("Pw-s3cret"), "{journaled}");
        assert!(journaled.contains("set -- /etc/n1.conf /opt/nats-server 6222"));
        let sent = write_script(&inv.nodes[0], &p, false);
        assert!(sent.contains("Pw-s3cret"));
        let check = check_script(&p);
        assert!(!check.contains("Pw-s3cret"));
        assert!(
            check.contains("grep -qiF -- n2:6222 /etc/n1.conf"),
            "{check}"
        );
        assert!(check.contains("! grep -qiF -- n2:6299"), "{check}");
    }

    #[test]
    fn routes_already_right_are_left_alone_and_json_stays_json() {
        let inv = inv();
        let json = "{\n  \"server_name\": $SERVER_NAME,\n  \"cluster\": {\n    \"port\": 6222,\n    \"routes\": [\n      \"nats://n1:6222\",\n      \"nats://n2:6222\",\n      \"nats://n3:6222\"\n    ]\n  }\n}\n";
        let p = plan(&inv, &inv.nodes[1], &cap("/c/nats.conf", json)).unwrap();
        assert!(p.already);
        assert_eq!(p.vars, vec!["SERVER_NAME"]);
        let bad = json.replace(":6222\",", ":6299\",");
        let p = plan(&inv, &inv.nodes[1], &cap("/c/nats.conf", &bad)).unwrap();
        assert!(!p.already);
        assert_eq!(p.text, json);
        // a classic config without a self route gets none
        let classic = "cluster {\n  port: 6222\n  routes = [ nats-route://n2:7000, nats-route://n3:7000 ]\n}\n";
        let p = plan(&inv, &inv.nodes[0], &cap("/c/a.conf", classic)).unwrap();
        assert_eq!(p.endpoints, vec!["n2:6222", "n3:6222"]);
        assert!(
            p.text
                .contains("nats-route://n2:6222, nats-route://n3:6222"),
            "{}",
            p.text
        );
    }

    #[test]
    fn no_cluster_or_no_file_is_an_error() {
        let inv = inv();
        assert!(plan(&inv, &inv.nodes[0], &cap("/a", "port: 4222\n"))
            .unwrap_err()
            .contains("no cluster block"));
        let none = CapturedConfig {
            files: vec![],
            missing: vec!["/gone.conf".into()],
        };
        assert_eq!(
            plan(&inv, &inv.nodes[0], &none).unwrap_err(),
            "cannot read /gone.conf"
        );
    }

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    }

    /// The write script and the check, run for real on this machine with a stand-in server
    /// binary: accepted → replaced (mode kept, no temp file), rejected → untouched with the
    /// server's message; the check tells the two apart.
    #[test]
    fn write_script_replaces_only_what_the_server_accepts() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("n1.conf");
        std::fs::write(&conf, CLASSIC).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
        let bin = dir.path().join("fake-server");
        std::fs::write(
            &bin,
            "#!/bin/sh\ngrep -q 6222 \"$3\" && exit 0\necho \"bad config $3\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = format!(
            "cluster: c\ndefaults:\n  nats: {{cluster_port: 6222, server_bin: {}}}\nnodes:\n  - {{name: n1, host: 10.9.0.11, nats: {{cluster_host: n1}}}}\n  - {{name: n2, host: 10.9.0.12, nats: {{cluster_host: n2}}}}\n  - {{name: n3, host: 10.9.0.13, nats: {{cluster_host: n3}}}}\n",
            bin.display()
        );
        let inv = Inventory::parse(Path::new("i.yaml"), &text).unwrap();
        let path = conf.to_string_lossy().into_owned();
        let p = plan(&inv, &inv.nodes[0], &cap(&path, CLASSIC)).unwrap();
        assert!(!sh(&check_script(&p)).status.success(), "not applied yet");

        // rejected: the stand-in refuses a config without 6222
        let mut bad = p.clone();
        bad.text = CLASSIC.replace("6222", "6211");
        let o = sh(&write_script(&inv.nodes[0], &bad, false));
        assert_eq!(o.status.code(), Some(5));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("bad config") && err.contains("untouched"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), CLASSIC);

        let o = sh(&write_script(&inv.nodes[0], &p, false));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), p.text);
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(sh(&check_script(&p)).status.success(), "applied");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("nats-rescue"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn scripts_are_valid_sh() {
        let inv = inv();
        let p = plan(&inv, &inv.nodes[0], &cap("/etc/n1.conf", CLASSIC)).unwrap();
        for s in [
            write_script(&inv.nodes[0], &p, false),
            read_script("/etc/it's.conf"),
            check_script(&p),
        ] {
            let st = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&s)
                .status()
                .unwrap();
            assert!(st.success(), "{s}");
        }
    }
}
