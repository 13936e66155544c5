//! An audit trail that does not depend on trusting the operator's disk: a finished, signed
//! journal of a real recovery on the lab, then (a) its last records cut off at a line
//! boundary and (b) one command rewritten with every later hash recomputed. The chain alone
//! verifies both (as it must); the nodes' witnesses and the signature catch both.

use crate::support::lab::{modern_server, nats_rescue_command, text, Lab};
use nats_rescue::journal::{Event, Record};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nr(journals: &Path, args: &[&str]) -> Output {
    let mut c = nats_rescue_command(&[], args);
    c.env("NATS_RESCUE_JOURNAL_DIR", journals)
        .env("NO_COLOR", "1")
        .output()
        .expect("run nats-rescue")
}

fn keygen(path: &Path) -> String {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "auditor", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("public key")
        .trim()
        .to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| Record::from_line(l).unwrap())
        .collect()
}

fn write(path: &Path, recs: &[Record]) {
    let mut s = String::new();
    for r in recs {
        s.push_str(&r.to_line());
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn witnesses_and_signatures_catch_a_cut_and_a_consistent_rewrite() {
    let lab = Lab::up(&modern_server(), 3);
    let tmp = tempfile::tempdir().unwrap();
    let journals = tmp.path().join("journals");
    let key = tmp.path().join("auditor");
    let pubkey = keygen(&key);
    let allowed = tmp.path().join("allowed_signers");
    std::fs::write(&allowed, format!("auditor@example {pubkey}\n")).unwrap();
    let inv = lab.inventory.to_string_lossy().into_owned();

    lab.lab_ok("break", &["quorum-loss"]);
    let o = nr(
        &journals,
        &[
            "-i",
            &inv,
            "run",
            "insufficient-nodes",
            "--yes",
            "--sign",
            "--sign-key",
            &key.to_string_lossy(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let journal: PathBuf = std::fs::read_dir(&journals)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("journal");
    let incident = journal.file_stem().unwrap().to_string_lossy().into_owned();
    let head = PathBuf::from(format!("{}.head", journal.display()));
    let sig = PathBuf::from(format!("{}.head.sig", journal.display()));

    // The whole journal: chain, witnesses on the nodes, signature — all good.
    let v = nr(
        &journals,
        &[
            "-i",
            &inv,
            "journal",
            "verify",
            &incident,
            "--witnesses",
            "--allowed-signers",
            &allowed.to_string_lossy(),
        ],
    );
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(out.contains("witness n2: consistent"), "{out}");
    assert!(out.contains("signature: ok"), "{out}");

    // Interoperable with OpenSSH both ways.
    let kv = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ssh-keygen -Y verify -f '{}' -I auditor@example -n nats-rescue-journal -s '{}' < '{}'",
            allowed.display(),
            sig.display(),
            head.display()
        ))
        .output()
        .unwrap();
    assert!(
        kv.status.success(),
        "ssh-keygen -Y verify of our signature:\n{}",
        text(&kv)
    );
    let key2 = tmp.path().join("other");
    let pub2 = keygen(&key2);
    let allowed2 = tmp.path().join("allowed2");
    std::fs::write(&allowed2, format!("other@example {pub2}\n")).unwrap();
    let signed_by_openssh = tmp.path().join("openssh");
    copy_dir(&journals, &signed_by_openssh);
    let head2 = signed_by_openssh.join(head.file_name().unwrap());
    std::fs::remove_file(signed_by_openssh.join(sig.file_name().unwrap())).unwrap();
    let ks = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "nats-rescue-journal", "-f"])
        .arg(&key2)
        .arg(&head2)
        .output()
        .unwrap();
    assert!(ks.status.success(), "{}", text(&ks));
    let v = nr(
        &signed_by_openssh,
        &[
            "journal",
            "verify",
            &incident,
            "--allowed-signers",
            &allowed2.to_string_lossy(),
        ],
    );
    assert_eq!(
        v.status.code(),
        Some(0),
        "ssh-keygen's signature:\n{}",
        text(&v)
    );
    // ...and a key that is not allowed is refused.
    let v = nr(
        &signed_by_openssh,
        &[
            "journal",
            "verify",
            &incident,
            "--allowed-signers",
            &allowed.to_string_lossy(),
        ],
    );
    assert_eq!(v.status.code(), Some(5), "{}", text(&v));

    let recs = records(&journal);
    let n = recs.len();
    // (a) Cut off the last records at a line boundary (back to before the last result).
    let last_result = recs
        .iter()
        .rposition(|r| matches!(r.event, Event::ActionResult { .. }))
        .expect("an action result");
    let cut_dir = tmp.path().join("cut");
    copy_dir(&journals, &cut_dir);
    write(
        &cut_dir.join(journal.file_name().unwrap()),
        &recs[..last_result],
    );
    // (b) Rewrite consistently: change one command, recompute every later hash.
    let rw_dir = tmp.path().join("rewritten");
    copy_dir(&journals, &rw_dir);
    let first_intent = recs
        .iter()
        .position(|r| matches!(r.event, Event::ActionIntent { mutating: true, .. }))
        .expect("a mutating intent");
    let mut forged: Vec<Record> = recs[..first_intent].to_vec();
    for r in &recs[first_intent..] {
        let mut ev = r.event.clone();
        if let Event::ActionIntent { command, .. } = &mut ev {
            if r.seq == recs[first_intent].seq {
                *command = "echo nothing to see here".into();
            }
        }
        let prev = forged.last().map(|p| p.hash.clone()).unwrap();
        forged.push(Record::seal(r.seq, r.ts.clone(), &r.incident, ev, &prev));
    }
    assert_eq!(forged.len(), n);
    write(&rw_dir.join(journal.file_name().unwrap()), &forged);

    for (what, dir) in [("cut", &cut_dir), ("rewritten", &rw_dir)] {
        let plain = nr(dir, &["journal", "verify", &incident]);
        assert_eq!(
            plain.status.code(),
            Some(0),
            "{what}: the chain itself is intact\n{}",
            text(&plain)
        );
        let w = nr(
            dir,
            &["-i", &inv, "journal", "verify", &incident, "--witnesses"],
        );
        assert_eq!(w.status.code(), Some(5), "{what}: witnesses\n{}", text(&w));
        let wout = String::from_utf8_lossy(&w.stdout);
        assert!(
            wout.contains("DISAGREES")
                && wout.contains("is not in the local chain")
                && wout.contains("witness seq "),
            "{what}: {wout}"
        );
        let s = nr(
            dir,
            &[
                "journal",
                "verify",
                &incident,
                "--allowed-signers",
                &allowed.to_string_lossy(),
            ],
        );
        assert_eq!(s.status.code(), Some(5), "{what}: signature\n{}", text(&s));
        // The export states both anchors.
        let e = nr(
            dir,
            &["journal", "export", &incident, "--format", "markdown"],
        );
        let md = String::from_utf8_lossy(&e.stdout);
        assert!(md.contains("## Anchors outside this file"), "{md}");
        assert!(
            md.contains("it does not cover this journal"),
            "{what}: {md}"
        );
    }
    lab.down();
}
