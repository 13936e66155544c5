//! Routes with credentials and the real config grammar, end to end on real labs:
//! `lab up --route-auth` (classic configs, nats-server 2.15.1 and 2.9.10) and
//! `--config-style helm --route-auth` (JSON, routes include the server itself,
//! `server_name: $SERVER_NAME`). Per lab: healthy → `diagnose` exit 0 (no false mismatch
//! from the self route or the credentials); `lab break bad-routes` → `diagnose` exit 1 with
//! cluster-config first; `run cluster-config --yes` → healthy again; every config still
//! carries its credentials in every route and is accepted by `nats-server -t`; the route
//! password appears in no journal file, no `journal export`, no stdout/stderr.

use crate::support::journal::records;
use crate::support::lab::{legacy_server, modern_server, require_root, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

struct Run {
    lab: Lab,
    journals: PathBuf,
    /// Everything the commands printed (to grep for the password).
    printed: String,
    _tmp: tempfile::TempDir,
}

impl Run {
    fn nr(&mut self, args: &[&str]) -> Out {
        let inv = self.lab.inventory.clone();
        self.nr_with(&inv, args)
    }

    fn nr_with(&mut self, inv: &Path, args: &[&str]) -> Out {
        let j = self.journals.clone();
        self.nr_env(inv, &j, &[], args)
    }

    fn nr_env(&mut self, inv: &Path, journals: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
        let o = Command::new(env!("CARGO_BIN_EXE_nats-rescue"))
            .arg("-i")
            .arg(inv)
            .args(args)
            .env_remove("NATS_RESCUE_INVENTORY")
            .env("NATS_RESCUE_JOURNAL_DIR", journals)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run nats-rescue");
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        self.printed.push_str(&out.stdout);
        self.printed.push_str(&out.stderr);
        out
    }

    /// `diagnose --json` until `pred` holds (the cluster settles after `lab up`/`break`).
    fn diagnose_until(&mut self, what: &str, limit: Duration, pred: impl Fn(&Out) -> bool) -> Out {
        let t0 = Instant::now();
        loop {
            let o = self.nr(&["diagnose", "--json"]);
            if pred(&o) {
                return o;
            }
            assert!(
                t0.elapsed() < limit,
                "{what}: not reached after {limit:?}; last diagnose:\n{}",
                o.text()
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

fn first_cause(o: &Out) -> Option<String> {
    let v: Value = serde_json::from_str(&o.stdout).ok()?;
    v["findings"][0]["cause"].as_str().map(str::to_string)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn scenario(server: &Path, label: &str, extra: &[&str], failure_paths: bool) {
    require_root();
    let t0 = Instant::now();
    let lab = Lab::up_with(server, 3, extra);
    let tmp = tempfile::Builder::new()
        .prefix("nats-rescue-config-repair-")
        .tempdir()
        .expect("tempdir");
    let journals = tmp.path().join("journals");
    std::fs::create_dir_all(&journals).expect("journal dir");
    let mut r = Run {
        lab,
        journals,
        printed: String::new(),
        _tmp: tmp,
    };
    let st = r.lab.state();
    let pw = st.route_auth.clone().expect("route auth").password;
    let user = st.route_auth.clone().expect("route auth").user;
    let helm = extra.contains(&"helm");

    // 1. healthy is healthy: credentials and (helm) the self route are no mismatch.
    let o = r.diagnose_until("healthy diagnose exit 0", Duration::from_secs(40), |o| {
        o.code == 0
    });
    let v: Value = serde_json::from_str(&o.stdout).expect("diagnose json");
    assert_eq!(v["healthy"], true, "{}", o.text());
    eprintln!(
        "[{label} {:>5.1}s] healthy: diagnose exit 0",
        t0.elapsed().as_secs_f64()
    );
    let status = r.nr(&["status", "--json"]);
    assert!(
        !status.stdout.contains(&pw),
        "status prints the route password"
    );

    // 2. bad routes on every node.
    r.lab.lab_ok("break", &["bad-routes"]);
    let o = r.diagnose_until(
        "diagnose names cluster-config first",
        Duration::from_secs(60),
        |o| o.code == 1 && first_cause(o).as_deref() == Some("cluster-config"),
    );
    assert!(
        o.stdout.contains("[REDACTED]") || !o.stdout.contains("@"),
        "{}",
        o.text()
    );
    eprintln!(
        "[{label} {:>5.1}s] bad-routes: diagnose exit 1, cluster-config first",
        t0.elapsed().as_secs_f64()
    );

    // 3. a dry run changes nothing and shows the routes redacted.
    let before: Vec<Vec<u8>> = st
        .nodes
        .iter()
        .map(|n| std::fs::read(&n.config).expect("config"))
        .collect();
    let d = r.nr(&["run", "cluster-config", "--dry-run", "--yes"]);
    assert_eq!(d.code, 0, "dry run:\n{}", d.text());
    assert!(
        d.stdout.contains(":[REDACTED]@") || d.stderr.contains(":[REDACTED]@"),
        "the dry run shows the routes (redacted):\n{}",
        d.text()
    );
    for (n, b) in st.nodes.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(&n.config).expect("config"),
            b,
            "--dry-run changed {}",
            n.name
        );
    }

    // 4. the repair.
    let t_run = Instant::now();
    let o = r.nr(&["run", "cluster-config", "--yes"]);
    assert_eq!(o.code, 0, "run cluster-config:\n{}", o.text());
    eprintln!(
        "[{label} {:>5.1}s] run cluster-config --yes: exit 0 in {:.1}s",
        t0.elapsed().as_secs_f64(),
        t_run.elapsed().as_secs_f64()
    );
    r.diagnose_until("healthy after the repair", Duration::from_secs(60), |o| {
        o.code == 0
    });

    // 5. every config keeps its credentials in every route, no bad port, valid for the server.
    for (i, n) in st.nodes.iter().enumerate() {
        let text = std::fs::read_to_string(&n.config).expect("config");
        assert!(
            !text.contains(":6299"),
            "{}: bad port left:\n{text}",
            n.name
        );
        let with_creds = text.matches(&format!("://{user}:{pw}@")).count();
        let routes = text.matches("://").count();
        // the lab lists every server, itself included, in both styles
        let expect = 3;
        assert_eq!(
            with_creds, expect,
            "{}: routes lost credentials:\n{text}",
            n.name
        );
        assert_eq!(routes, expect, "{}:\n{text}", n.name);
        // Everything but the routes array is byte for byte what was there.
        let orig = String::from_utf8(before[i].clone()).expect("utf-8");
        assert_eq!(orig.replace(":6299", ":6222"), text, "{}", n.name);
        if helm {
            let body: String = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
                .replace("$SERVER_NAME", "\"$SERVER_NAME\"")
                .replace(": 10Gi", ": \"10Gi\"");
            let j: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{}: not JSON any more ({e}):\n{text}", n.name));
            assert_eq!(j["cluster"]["routes"].as_array().map(Vec::len), Some(3));
        }
        let t = Command::new(server)
            .args(["-t", "-c"])
            .arg(&n.config)
            .env("SERVER_NAME", n.server_name())
            .output()
            .expect("nats-server -t");
        assert!(
            t.status.success(),
            "{}: nats-server -t rejects the repaired config: {}",
            n.name,
            String::from_utf8_lossy(&t.stderr)
        );
        // no temp file left next to it
        let dir = n.config.parent().expect("config dir");
        let left: Vec<String> = std::fs::read_dir(dir)
            .expect("config dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.contains("nats-rescue"))
            .collect();
        assert!(left.is_empty(), "{}: temp files left: {left:?}", n.name);
    }

    // 6. the password is nowhere in what the tool wrote or printed.
    let mut incidents = Vec::new();
    for f in files_under(&r.journals) {
        let bytes = std::fs::read(&f).expect("journal file");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&pw),
            "the route password is in {}",
            f.display()
        );
        if let Some(stem) = f.file_name().and_then(|s| s.to_str()) {
            if let Some(id) = stem.strip_suffix(".jsonl") {
                incidents.push(id.to_string());
            }
        }
    }
    assert!(!incidents.is_empty(), "no journal written");
    for id in &incidents {
        for format in ["markdown", "json"] {
            let e = r.nr(&["journal", "export", id, "--format", format]);
            assert_eq!(e.code, 0, "{}", e.text());
        }
    }
    assert!(
        r.printed.contains("rewrite the routes array"),
        "the run shows the rewrite"
    );
    assert!(
        !r.printed.contains(&pw),
        "the route password was printed:\n{}",
        r.printed
    );
    eprintln!(
        "[{label} {:>5.1}s] configs keep credentials; password in no journal/export/output",
        t0.elapsed().as_secs_f64()
    );
    if failure_paths {
        failures(&mut r, &pw);
        eprintln!(
            "[{label} {:>5.1}s] read-only config and a rejected config leave the file untouched",
            t0.elapsed().as_secs_f64()
        );
        crash_and_resume(&mut r, &pw);
        eprintln!(
            "[{label} {:>5.1}s] killed right after the rewrite intent: resume settles it by its check and repairs",
            t0.elapsed().as_secs_f64()
        );
        for f in files_under(&r.journals) {
            let t = String::from_utf8_lossy(&std::fs::read(&f).expect("journal")).into_owned();
            assert!(!t.contains(&pw), "the route password is in {}", f.display());
        }
        assert!(!r.printed.contains(&pw), "the route password was printed");
    }
    let Run { lab, .. } = r;
    lab.down();
}

/// Undoes `chattr +i` even when an assertion fails (the lab must be able to clean up).
struct Immutable(PathBuf);

impl Immutable {
    fn set(p: &Path) -> Immutable {
        let st = Command::new("chattr")
            .arg("+i")
            .arg(p)
            .status()
            .expect("chattr");
        assert!(st.success(), "chattr +i {}", p.display());
        Immutable(p.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// n1 with bad routes: a read-only file is reported and left alone; a result the server's
/// `-t` rejects leaves the original untouched and fails with the server's message; then the
/// real repair.
fn failures(r: &mut Run, pw: &str) {
    r.lab.lab_ok("break", &["bad-routes", "n1"]);
    let st = r.lab.state();
    let conf = st.nodes[0].config.clone();
    let broken = std::fs::read(&conf).expect("config");

    {
        let _ro = Immutable::set(&conf);
        let o = r.nr(&["run", "cluster-config", "--yes"]);
        assert_ne!(o.code, 0, "{}", o.text());
        assert!(
            o.stdout.contains("read-only") || o.stderr.contains("read-only"),
            "a read-only config must be named as such:\n{}",
            o.text()
        );
    }
    assert_eq!(std::fs::read(&conf).expect("config"), broken);

    let fake = r._tmp.path().join("fake-nats-server");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"nats-server: $3: rejected on purpose by the test\" >&2\nexit 1\n",
    )
    .expect("fake server");
    let _ = Command::new("chmod").arg("755").arg(&fake).status();
    let inv_text = std::fs::read_to_string(&r.lab.inventory).expect("inventory");
    let real_bin = st.nats_server.to_string_lossy().into_owned();
    assert!(inv_text.contains(&real_bin), "{inv_text}");
    let inv2 = r._tmp.path().join("inventory-fake-bin.yaml");
    std::fs::write(&inv2, inv_text.replace(&real_bin, &fake.to_string_lossy()))
        .expect("inventory copy");
    let o = r.nr_with(&inv2, &["run", "cluster-config", "--yes"]);
    assert_ne!(o.code, 0, "{}", o.text());
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(
        all.contains("rejected on purpose by the test") && all.contains("untouched"),
        "the server's own message must be shown:\n{}",
        o.text()
    );
    assert_eq!(std::fs::read(&conf).expect("config"), broken);
    let dir = conf.parent().expect("dir");
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.contains("nats-rescue"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");

    let o = r.nr(&["run", "cluster-config", "--yes"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let text = std::fs::read_to_string(&conf).expect("config");
    assert!(
        !text.contains(":6299") && text.contains(&format!(":{pw}@")),
        "{text}"
    );
    assert!(!r.printed.contains(pw), "the route password was printed");
    for f in files_under(&r.journals) {
        let t = String::from_utf8_lossy(&std::fs::read(&f).expect("journal")).into_owned();
        assert!(!t.contains(pw), "the route password is in {}", f.display());
    }
}

#[test]
fn config_repair_route_auth_nats_2_15() {
    scenario(&modern_server(), "route-auth 2.15", &["--route-auth"], true);
}

#[test]
fn config_repair_route_auth_nats_2_9() {
    scenario(&legacy_server(), "route-auth 2.9", &["--route-auth"], false);
}

#[test]
fn config_repair_helm_json_nats_2_15() {
    scenario(
        &modern_server(),
        "helm 2.15",
        &["--config-style", "helm", "--route-auth"],
        false,
    );
}

/// n1 with bad routes; the run is killed right after the rewrite's intent is fsynced (the
/// write never sent); `resume --yes` runs the journaled check (not applied), repeats the
/// action from a fresh read of the file, and the routes are repaired.
fn crash_and_resume(r: &mut Run, pw: &str) {
    r.lab.lab_ok("break", &["bad-routes", "n1"]);
    let conf = r.lab.state().nodes[0].config.clone();
    let broken = std::fs::read(&conf).expect("config");
    let jd = r.journals.join("crash");
    std::fs::create_dir_all(&jd).expect("crash journal dir");
    let inv = r.lab.inventory.clone();
    let o = r.nr_env(
        &inv,
        &jd,
        &[("NATS_RESCUE_TEST_CRASH_AFTER", "action_intent:rewrite@n1")],
        &["run", "cluster-config", "--yes"],
    );
    assert_ne!(o.code, 0, "the crash hook must stop the run:\n{}", o.text());
    let path = files_under(&jd)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("crash journal");
    let recs = records(&path);
    let tail = recs.last().expect("records");
    assert!(
        tail["event"] == "action_intent" && tail["action"] == "rewrite@n1",
        "the journal must end with the rewrite intent: {tail}"
    );
    assert!(
        !tail["command"].as_str().unwrap_or("").contains(pw),
        "intent not redacted"
    );
    assert_eq!(
        std::fs::read(&conf).expect("config"),
        broken,
        "nothing was sent"
    );

    let o = r.nr_env(&inv, &jd, &[], &["resume", "--yes"]);
    assert_eq!(o.code, 0, "resume:\n{}", o.text());
    let recs = records(&path);
    let decisions: Vec<String> = recs
        .iter()
        .filter(|x| x["event"] == "decision" && x["action"] == "rewrite@n1")
        .map(|x| x["decision"].as_str().unwrap_or("?").to_string())
        .collect();
    assert!(
        decisions.iter().any(|d| d.contains("check")),
        "the in-doubt rewrite must be decided by its check: {decisions:?}"
    );
    let text = std::fs::read_to_string(&conf).expect("config");
    assert!(
        !text.contains(":6299") && text.contains(&format!(":{pw}@")),
        "{text}"
    );
}
