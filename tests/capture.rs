//! `capture` and offline `status/diagnose --from` on a real lab (nats-server 2.15.1,
//! `--route-auth --accounts`): break it (bad routes), capture it while live `diagnose` says
//! cluster-config, heal it; live `diagnose` then exits 0 while `diagnose --from` the capture
//! still names cluster-config (exit 1) with the same findings, anywhere, without an inventory.
//! No member of the archive holds the route or system password; an altered archive is refused
//! (exit 2); `capture --incident` names the archive by its SHA-256 in the journal.

use crate::support::lab::{modern_server, require_root, Lab};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
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

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.text()))
    }
}

/// `nats-rescue ARGS` in `cwd`, with `-i inv` when given and no inventory otherwise.
fn nr(cwd: &Path, inv: Option<&Path>, journals: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nats-rescue"));
    if let Some(i) = inv {
        c.arg("-i").arg(i);
    }
    let o = c
        .args(args)
        .current_dir(cwd)
        .env_remove("NATS_RESCUE_INVENTORY")
        .env("NATS_RESCUE_JOURNAL_DIR", journals)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run nats-rescue");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `(cause, confidence, summary)` of every finding, in order.
fn findings(v: &Value) -> Vec<(String, String, String)> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                    (s("cause"), s("confidence"), s("summary"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = BTreeMap::new();
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let p = e.path().expect("path").to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).expect("read member");
        out.insert(p, b);
    }
    out
}

fn pack(m: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (p, b) in m {
        let mut h = tar::Header::new_gnu();
        h.set_size(b.len() as u64);
        h.set_mode(0o600);
        tar.append_data(&mut h, p, b.as_slice()).expect("append");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}

fn sha256(b: &[u8]) -> String {
    nats_rescue::inventory::sha256_hex(b)
}

#[test]
fn capture_a_broken_lab_heal_it_and_diagnose_from_the_capture() {
    require_root();
    let t0 = Instant::now();
    let lab = Lab::up_with(&modern_server(), 3, &["--route-auth", "--accounts"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let journals = work.join("journals");
    let elsewhere = work.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let inv = lab.inventory.clone();
    let st = lab.state();
    let route_pw = st.route_auth.clone().expect("route auth").password;
    let loaded = nats_rescue::inventory::Inventory::load(&inv).expect("inventory");
    let sys_pw = loaded.nodes[0]
        .nats
        .system_user
        .as_ref()
        .and_then(|u| u.password().map(str::to_string))
        .expect("system password");
    let step = |what: &str| eprintln!("[capture {:>5.1}s] {what}", t0.elapsed().as_secs_f64());

    // 1. Broken: every route points at a dead port. Wait until live diagnose names it.
    lab.lab_ok("break", &["bad-routes"]);
    let live_cause = |o: &Out| findings(&o.json()).first().map(|f| f.0.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = nr(work, Some(&inv), &journals, &["diagnose", "--json"]);
        if o.code == 1 && live_cause(&o).as_deref() == Some("cluster-config") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live diagnose never named cluster-config:\n{}",
            o.text()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    step("bad-routes: live diagnose names cluster-config");

    // 2. A rehearsal opens an incident to attach the capture to.
    let d = nr(
        work,
        Some(&inv),
        &journals,
        &["run", "cluster-config", "--dry-run", "--yes"],
    );
    assert!(d.code == 0 || d.code == 1, "{}", d.text());
    let incident = std::fs::read_dir(&journals)
        .expect("journal dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .expect("an incident journal");

    // 3. Capture, between two live diagnoses that agree (the state is steady).
    let (live, cap_path, cap_out) = {
        let mut tries = 0;
        loop {
            tries += 1;
            let before = nr(work, Some(&inv), &journals, &["diagnose", "--json"]);
            let name = format!("broken-{tries}.tar.gz");
            let c = nr(
                work,
                Some(&inv),
                &journals,
                &["capture", "-o", &name, "--incident", &incident],
            );
            assert_eq!(c.code, 0, "capture:\n{}", c.text());
            let after = nr(work, Some(&inv), &journals, &["diagnose", "--json"]);
            if findings(&before.json()) == findings(&after.json()) {
                break (after, work.join(&name), c);
            }
            assert!(
                tries < 5,
                "the lab never held still:\n{}\n{}",
                before.text(),
                after.text()
            );
        }
    };
    let bytes = std::fs::read(&cap_path).expect("capture file");
    let sha = sha256(&bytes);
    assert!(
        cap_out.stdout.contains(&sha) && cap_out.stdout.contains("broken-"),
        "capture prints its path and SHA-256:\n{}",
        cap_out.text()
    );
    step("captured (live diagnose steady around it)");

    // 4. Secrets: in no member (decompressed), not in what capture printed.
    let m = members(&bytes);
    for want in [
        "manifest.json",
        "inventory.yaml",
        "nodes/n1/varz.json",
        "nodes/n1/probe.txt",
    ] {
        assert!(m.contains_key(want), "{want} missing: {:?}", m.keys());
    }
    for (p, b) in &m {
        let t = String::from_utf8_lossy(b);
        assert!(!t.contains(&route_pw), "{p} holds the route password");
        assert!(!t.contains(&sys_pw), "{p} holds the system password");
    }
    let probe = String::from_utf8_lossy(&m["nodes/n1/probe.txt"]).into_owned();
    assert!(
        probe.contains("CFGL") && probe.contains("[REDACTED]"),
        "the config is in the capture, redacted:\n{probe}"
    );
    for s in [&route_pw, &sys_pw] {
        assert!(!cap_out.stdout.contains(s.as_str()) && !cap_out.stderr.contains(s.as_str()));
    }
    let manifest: Value = serde_json::from_slice(&m["manifest.json"]).expect("manifest");
    assert_eq!(manifest["cluster"], loaded.cluster.as_str());
    assert_eq!(manifest["inventory_sha256"], loaded.sha256.as_str());
    assert_eq!(manifest["versions"]["n1"], "2.15.1");
    for e in manifest["members"].as_array().expect("members") {
        let p = e["path"].as_str().expect("path");
        assert_eq!(e["sha256"].as_str(), Some(sha256(&m[p]).as_str()), "{p}");
    }

    // 5. The same findings offline, right away, from a folder with no inventory.
    let off = nr(
        &elsewhere,
        None,
        &journals,
        &[
            "diagnose",
            "--from",
            cap_path.to_str().expect("path"),
            "--json",
        ],
    );
    assert_eq!(off.code, 1, "{}", off.text());
    assert_eq!(
        findings(&off.json()),
        findings(&live.json()),
        "offline = live"
    );
    assert_eq!(off.json()["offline"]["sha256"], sha.as_str());
    step("diagnose --from = live diagnose (cause, confidence, summary)");

    // 6. The journal names the capture by its hash.
    let show = nr(work, None, &journals, &["journal", "show", &incident]);
    assert!(
        show.stdout.contains("capture attached") && show.stdout.contains(&sha),
        "{}",
        show.text()
    );
    let verify = nr(work, None, &journals, &["journal", "verify", &incident]);
    assert_eq!(verify.code, 0, "{}", verify.text());
    let export = nr(work, None, &journals, &["journal", "export", &incident]);
    assert!(
        export.stdout.contains("Captures attached") && export.stdout.contains(&sha),
        "{}",
        export.text()
    );

    // 7. Heal: live is healthy again; the capture still tells what was wrong.
    lab.lab_ok("heal", &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = nr(work, Some(&inv), &journals, &["diagnose", "--json"]);
        if o.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never healthy after heal:\n{}",
            o.text()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    step("healed: live diagnose exit 0");
    let from = cap_path.to_str().expect("path");
    let off = nr(&elsewhere, None, &journals, &["diagnose", "--from", from]);
    assert_eq!(off.code, 1, "{}", off.text());
    assert!(
        off.stdout.starts_with("OFFLINE: capture")
            && off
                .stdout
                .contains(manifest["captured_at"].as_str().expect("captured_at"))
            && off.stdout.contains("ago")
            && off.stdout.contains("cluster-config"),
        "{}",
        off.text()
    );
    let off = nr(
        &elsewhere,
        None,
        &journals,
        &["diagnose", "--from", from, "--json"],
    );
    assert_eq!(findings(&off.json()), findings(&live.json()));
    let status = nr(
        &elsewhere,
        None,
        &journals,
        &["status", "--from", from, "--json"],
    );
    assert_eq!(status.code, 1, "{}", status.text());
    assert_eq!(
        status.json()["offline"]["captured_at"],
        manifest["captured_at"]
    );
    step("after heal: diagnose --from still names cluster-config (exit 1)");

    // 8. A healthy capture, default name in the current directory, between two healthy live
    //    diagnoses: healthy offline too.
    let pattern = format!("nats-rescue-capture-{}-", loaded.cluster);
    let mut tries = 0;
    loop {
        tries += 1;
        let before = nr(work, Some(&inv), &journals, &["diagnose"]);
        let c = nr(work, Some(&inv), &journals, &["capture"]);
        assert_eq!(c.code, 0, "{}", c.text());
        let after = nr(work, Some(&inv), &journals, &["diagnose"]);
        let path = c
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("capture: "))
            .map(PathBuf::from)
            .expect("capture: PATH");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(
            path.parent() == Some(work.canonicalize().expect("canon").as_path())
                && name.starts_with(&pattern)
                && name.ends_with("Z.tar.gz"),
            "{}",
            c.text()
        );
        assert!(c
            .stdout
            .contains(&sha256(&std::fs::read(&path).expect("read"))));
        if before.code == 0 && after.code == 0 {
            let d = path.to_str().expect("path");
            let ok = nr(&elsewhere, None, &journals, &["diagnose", "--from", d]);
            assert_eq!(
                ok.code,
                0,
                "healthy live before and after, offline:\n{}\nlive after:\n{}",
                ok.text(),
                after.text()
            );
            break;
        }
        assert!(
            tries < 5,
            "never healthy twice:\n{}\n{}",
            before.text(),
            after.text()
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // 9. Refused: an altered member, an unlisted member, an existing -o, not an archive.
    let mut altered = m.clone();
    let v = String::from_utf8_lossy(&altered["nodes/n2/varz.json"]).replace("6299", "6222");
    altered.insert("nodes/n2/varz.json".into(), v.into_bytes());
    let bad = work.join("altered.tar.gz");
    std::fs::write(&bad, pack(&altered)).expect("write");
    let o = nr(
        &elsewhere,
        None,
        &journals,
        &["diagnose", "--from", bad.to_str().expect("p")],
    );
    assert!(
        o.code == 2 && o.stderr.contains("nodes/n2/varz.json") && o.stderr.contains("altered"),
        "{}",
        o.text()
    );
    let mut extra = m.clone();
    extra.insert("nodes/n9/varz.json".into(), b"{}".to_vec());
    std::fs::write(&bad, pack(&extra)).expect("write");
    let o = nr(
        &elsewhere,
        None,
        &journals,
        &["status", "--from", bad.to_str().expect("p")],
    );
    assert!(
        o.code == 2 && o.stderr.contains("not in the manifest"),
        "{}",
        o.text()
    );
    std::fs::write(&bad, b"plain text").expect("write");
    let o = nr(
        &elsewhere,
        None,
        &journals,
        &["diagnose", "--from", bad.to_str().expect("p")],
    );
    assert!(o.code == 2 && o.stderr.contains("tar.gz"), "{}", o.text());
    let o = nr(work, Some(&inv), &journals, &["capture", "-o", from]);
    assert!(
        o.code == 2 && o.stderr.contains("never overwritten"),
        "{}",
        o.text()
    );
    assert_eq!(
        std::fs::read(&cap_path).expect("read"),
        bytes,
        "left as it was"
    );
    step("altered, extra, not-an-archive refused (exit 2); -o never overwrites");
    lab.down();
}

/// nats-server 2.9.10 (no /raftz): quorum loss captured, healed, still named offline.
#[test]
fn quorum_loss_on_2_9_10_is_named_from_the_capture_after_heal() {
    require_root();
    let lab = Lab::up(&crate::support::lab::legacy_server(), 3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let journals = work.join("journals");
    let inv = lab.inventory.clone();
    lab.lab_ok("break", &["quorum-loss"]);
    let mut tries = 0;
    let (live, cap) = loop {
        tries += 1;
        let before = nr(work, Some(&inv), &journals, &["diagnose", "--json"]);
        let name = format!("q-{tries}.tar.gz");
        let c = nr(work, Some(&inv), &journals, &["capture", "-o", &name]);
        assert_eq!(c.code, 0, "{}", c.text());
        let after = nr(work, Some(&inv), &journals, &["diagnose", "--json"]);
        let f = findings(&after.json());
        if findings(&before.json()) == f && f.first().is_some_and(|x| x.0 == "insufficient-nodes") {
            break (after, work.join(name));
        }
        assert!(
            tries < 40,
            "insufficient-nodes never steady:\n{}",
            after.text()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let from = cap.to_str().expect("path");
    let off = nr(
        work,
        None,
        &journals,
        &["diagnose", "--from", from, "--json"],
    );
    assert_eq!(off.code, 1, "{}", off.text());
    assert_eq!(
        findings(&off.json()),
        findings(&live.json()),
        "offline = live"
    );
    lab.lab_ok("heal", &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while nr(work, Some(&inv), &journals, &["diagnose"]).code != 0 {
        assert!(Instant::now() < deadline, "never healthy after heal");
        std::thread::sleep(Duration::from_secs(2));
    }
    let off = nr(
        work,
        None,
        &journals,
        &["diagnose", "--from", from, "--json"],
    );
    assert_eq!(off.code, 1, "{}", off.text());
    assert_eq!(findings(&off.json()), findings(&live.json()));
    let st = nr(work, None, &journals, &["status", "--from", from]);
    assert!(
        st.code == 1 && st.stdout.contains("OFFLINE") && st.stdout.contains("NO META LEADER"),
        "{}",
        st.text()
    );
    lab.down();
}

/// A node whose HTTP monitoring is firewalled is captured through the system account: the
/// capture carries that view (`system/`), offline the node's facts come from it again, and
/// the system password is in no member.
#[test]
fn a_firewalled_monitor_is_captured_through_the_system_account() {
    require_root();
    let lab = Lab::up_with(&modern_server(), 3, &["--accounts"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let journals = work.join("journals");
    let inv = lab.inventory.clone();
    let loaded = nats_rescue::inventory::Inventory::load(&inv).expect("inventory");
    let sys_pw = loaded.nodes[0]
        .nats
        .system_user
        .as_ref()
        .and_then(|u| u.password().map(str::to_string))
        .expect("system password");
    let port = loaded.node("n2").expect("n2").nats.monitor_port;
    let rule = format!("INPUT -p tcp --dport {port} -j DROP");
    let o = lab.in_ns("n2", &format!("iptables -I {rule}"));
    assert!(o.status.success(), "{}", crate::support::lab::text(&o));
    let c = nr(work, Some(&inv), &journals, &["capture", "-o", "fw.tar.gz"]);
    let cleanup = lab.in_ns("n2", &format!("iptables -D {rule}"));
    assert!(
        cleanup.status.success(),
        "{}",
        crate::support::lab::text(&cleanup)
    );
    assert_eq!(c.code, 0, "{}", c.text());
    let bytes = std::fs::read(work.join("fw.tar.gz")).expect("capture");
    let m = members(&bytes);
    assert!(
        m.contains_key("system/observation.json") && m.contains_key("system/n2/varz.json"),
        "{:?}",
        m.keys()
    );
    let n2: Value = serde_json::from_slice(&m["nodes/n2/observation.json"]).expect("json");
    assert!(n2["http"]["varz"]["error"].is_string(), "{n2}");
    for (p, b) in &m {
        assert!(
            !String::from_utf8_lossy(b).contains(&sys_pw),
            "{p} holds the system password"
        );
    }
    let from = work.join("fw.tar.gz");
    let off = nr(
        work,
        None,
        &journals,
        &["diagnose", "--from", from.to_str().expect("path"), "--json"],
    );
    let v = off.json();
    let node = |name: &str| {
        v["nodes"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["name"] == name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(node("n2")["source"], "system", "{}", off.text());
    assert_eq!(node("n2")["server_name"], "n2", "{}", off.text());
    assert_eq!(node("n1")["source"], "http", "{}", off.text());
    assert_eq!(
        off.code,
        0,
        "healthy over the system account:\n{}",
        off.text()
    );
    lab.down();
}
