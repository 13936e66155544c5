//! SshTransport against real sshd processes (see `support::sshd`).

use crate::support::sshd::{self, Agent, HttpServer, NodeSpec, SilentPort, Sshd, LISTEN, VARZ};
use nats_rescue::inventory::Node;
use nats_rescue::ssh::SshTransport;
use nats_rescue::transport::{RemoteCommand, Transport, TransportError, OUTPUT_CAP};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn cmd(script: &str) -> RemoteCommand {
    RemoteCommand::new(script, Duration::from_secs(20))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `yes <word>` cut at `n` bytes: what the remote side prints, recomputed here.
fn yes_bytes(word: &str, n: usize) -> Vec<u8> {
    format!("{word}\n")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(n)
        .collect()
}

#[test]
fn exit_codes_and_separate_streams() {
    let sshd = Sshd::start();
    let node = sshd.node("n1");
    let t = SshTransport::new(false);

    let ok = t
        .exec(&node, &cmd("echo to-stdout; echo to-stderr >&2"))
        .expect("exec");
    assert_eq!(ok.exit_code, Some(0));
    assert!(ok.success());
    assert!(!ok.timed_out);
    assert_eq!(ok.stdout.text, "to-stdout\n");
    assert_eq!(ok.stderr.text, "to-stderr\n");
    assert_eq!(ok.stdout.sha256, sha256(b"to-stdout\n"));
    assert_eq!(ok.stdout.total_bytes, 10);

    let three = t
        .exec(&node, &cmd("echo failing >&2; exit 3"))
        .expect("exec");
    assert_eq!(three.exit_code, Some(3));
    assert!(!three.success());
    assert_eq!(three.stdout.text, "");
    assert_eq!(three.stderr.text, "failing\n");

    let max = t.exec(&node, &cmd("exit 255")).expect("exec");
    assert_eq!(max.exit_code, Some(255));

    // Quoting survives the trip: the script is one `sh -c` argument on the node.
    let q = t
        .exec(&node, &cmd(r#"printf '%s|' "a b" 'c'"'"'d' "$((1+2))""#))
        .expect("exec");
    assert_eq!(q.stdout.text, "a b|c'd|3|");

    // A command that exits 124 by itself, early, is an exit code, not a timeout.
    let early = t.exec(&node, &cmd("exit 124")).expect("exec");
    assert_eq!((early.exit_code, early.timed_out), (Some(124), false));

    // stdin is closed: a command reading it does not hang.
    let cat = t.exec(&node, &cmd("cat; echo after-cat")).expect("exec");
    assert_eq!(cat.stdout.text, "after-cat\n");

    // All of the above went through one cached session.
    assert_eq!(sshd.logins(), 1, "{}", sshd.log());
}

#[test]
fn eight_megabytes_on_both_streams_without_deadlock() {
    let sshd = Sshd::start();
    let node = sshd.node("n1");
    let t = SshTransport::new(false);
    const HALF: usize = 4 * 1024 * 1024;

    // stderr first and big: a reader that drains stdout to the end first would hang here.
    let big_err_first = format!(
        "yes err | head -c {} >&2; yes out | head -c {}",
        6 * 1024 * 1024,
        2 * 1024 * 1024
    );
    let out = t.exec(&node, &cmd(&big_err_first)).expect("exec");
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.stderr.total_bytes, 6 * 1024 * 1024);
    assert_eq!(out.stdout.total_bytes, 2 * 1024 * 1024);
    assert_eq!(
        out.stderr.sha256,
        sha256(&yes_bytes("err", 6 * 1024 * 1024))
    );
    assert_eq!(
        out.stdout.sha256,
        sha256(&yes_bytes("out", 2 * 1024 * 1024))
    );

    // Both at once, interleaved.
    let both = format!(
        "(yes stdout-line | head -c {HALF}) & (yes stderr-line | head -c {HALF} >&2); wait"
    );
    let out = t.exec(&node, &cmd(&both)).expect("exec");
    assert_eq!(out.exit_code, Some(0));
    for (c, word) in [(&out.stdout, "stdout-line"), (&out.stderr, "stderr-line")] {
        assert_eq!(c.total_bytes, HALF as u64);
        assert_eq!(c.sha256, sha256(&yes_bytes(word, HALF)));
        assert!(c.truncated);
        assert_eq!(c.text.len(), OUTPUT_CAP);
        assert!(c.text.starts_with(&format!("{word}\n{word}\n")));
    }
}

#[test]
fn a_command_past_its_timeout_is_stopped_on_the_node() {
    let sshd = Sshd::start();
    let node = sshd.node("n1");
    let t = SshTransport::new(false);
    let marker = format!("marker-{}-{}", std::process::id(), sshd.port);
    let started = Instant::now();
    let out = t
        .exec(
            &node,
            &RemoteCommand::new(
                format!("echo started; sleep 300; echo {marker}"),
                Duration::from_secs(1),
            ),
        )
        .expect("exec");
    let took = started.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.exit_code, None);
    assert!(!out.success());
    assert_eq!(
        out.stdout.text, "started\n",
        "output before the timeout is kept"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "took {took:?}"
    );

    // The remote side is gone too (sshd runs on this machine, so pgrep here sees it).
    let until = Instant::now() + Duration::from_secs(4);
    loop {
        let found = std::process::Command::new("pgrep")
            .arg("-f")
            .arg(&marker)
            .output()
            .expect("pgrep");
        if !found.status.success() {
            break;
        }
        assert!(
            Instant::now() < until,
            "remote process survived: {}",
            String::from_utf8_lossy(&found.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The session is still good for the next command.
    assert_eq!(
        t.exec(&node, &cmd("echo next")).expect("exec").stdout.text,
        "next\n"
    );
}

#[test]
fn a_frozen_connection_is_abandoned_at_the_client_deadline() {
    let sshd = Sshd::start();
    let node = sshd.node("n1");
    let t = SshTransport::new(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("sshd-session.pid");
    // The script reports its connection's sshd process (sh -> timeout -> sshd), then waits.
    let script = format!(
        "ps -o ppid= -p $PPID | tr -d ' ' > {}; sleep 30",
        pid_file.display()
    );
    // Freeze that sshd process as soon as it is known: the node goes silent mid-command,
    // as with a network that drops everything, and only our own deadline can end the call.
    let freezer = std::thread::spawn({
        let pid_file = pid_file.clone();
        move || {
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                    if let Ok(pid) = pid.trim().parse::<u32>() {
                        std::process::Command::new("kill")
                            .args(["-STOP", &pid.to_string()])
                            .status()
                            .expect("kill -STOP");
                        return Some(pid);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }
    });
    let started = Instant::now();
    let out = t
        .exec(&node, &RemoteCommand::new(script, Duration::from_secs(1)))
        .expect("exec returns an output");
    let took = started.elapsed();
    let frozen = freezer
        .join()
        .expect("freezer")
        .expect("the sshd session pid was reported");
    // Clean up the frozen process (started by our sshd) by its pid.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &frozen.to_string()])
        .status();
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    // timeout 1s + kill-after 2s + 1s of grace, and no more.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    // The abandoned session is not reused: the next call connects afresh.
    assert_eq!(
        t.exec(&node, &cmd("echo fresh")).expect("exec").stdout.text,
        "fresh\n"
    );
    assert_eq!(sshd.logins(), 2, "{}", sshd.log());
}

#[test]
fn changed_host_key_is_refused_with_both_fingerprints() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let impostor = dir.path().join("other_host_key");
    sshd::keygen(&impostor, "ed25519", "");
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "[{LISTEN}]:{} {}\n",
            sshd.port,
            sshd::pub_key(&impostor.with_extension("pub"))
        ),
    )
    .expect("known_hosts");
    let known_fp = sshd::ssh_keygen_fingerprint(&impostor.with_extension("pub"));
    let offered_fp = sshd.host_fingerprint("ed25519");

    let mut spec = NodeSpec::new("n1", &sshd);
    spec.known_hosts = kh.clone();
    for accept_new in [false, true] {
        spec.accept_new = accept_new;
        let t = SshTransport::new(accept_new);
        let err = t
            .exec(&spec.build(), &cmd("echo must-not-run"))
            .expect_err("changed key must be refused");
        match &err {
            TransportError::HostKeyChanged { known, offered, .. } => {
                assert!(known.contains(&known_fp), "{known}");
                assert!(offered.contains(&offered_fp), "{offered}");
            }
            other => panic!("expected HostKeyChanged, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&known_fp) && msg.contains(&offered_fp),
            "{msg}"
        );
        assert!(t.take_accepted_host_keys().is_empty());
    }
    // Refused before authentication: the client key was never offered.
    assert_eq!(sshd.logins(), 0, "{}", sshd.log());
    assert_eq!(
        std::fs::read_to_string(&kh).expect("kh").lines().count(),
        1,
        "known_hosts untouched"
    );
}

#[test]
fn unknown_host_is_refused() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = NodeSpec::new("n1", &sshd);
    // Another server's key on another port does not vouch for this one.
    spec.known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &spec.known_hosts,
        format!(
            "[{LISTEN}]:1 {}\n",
            sshd::pub_key(&sshd.host_pub("ed25519"))
        ),
    )
    .expect("known_hosts");
    let err = SshTransport::new(false)
        .exec(&spec.build(), &cmd("true"))
        .expect_err("unknown host");
    match &err {
        TransportError::HostKeyUnknown { offered, .. } => {
            assert!(
                offered.contains(&sshd.host_fingerprint("ed25519")),
                "{offered}"
            );
        }
        other => panic!("expected HostKeyUnknown, got {other:?}"),
    }
    // A missing known_hosts file means every host is unknown.
    spec.known_hosts = dir.path().join("does-not-exist");
    let err = SshTransport::new(false)
        .exec(&spec.build(), &cmd("true"))
        .expect_err("unknown host");
    assert!(
        matches!(err, TransportError::HostKeyUnknown { .. }),
        "{err:?}"
    );
    assert!(!spec.known_hosts.exists());
    assert_eq!(sshd.logins(), 0);
}

#[test]
fn accept_new_appends_to_known_hosts_and_reports_it() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("ssh/known_hosts");
    let mut spec = NodeSpec::new("n1", &sshd);
    spec.known_hosts = kh.clone();

    // Per-node setting.
    spec.accept_new = true;
    let t = SshTransport::new(false);
    assert_eq!(
        t.exec(&spec.build(), &cmd("echo hi"))
            .expect("exec")
            .stdout
            .text,
        "hi\n"
    );
    let accepted = t.take_accepted_host_keys();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].node, "n1");
    assert_eq!(accepted[0].host, format!("[{LISTEN}]:{}", sshd.port));
    assert_eq!(accepted[0].fingerprint, sshd.host_fingerprint("ed25519"));
    assert!(t.take_accepted_host_keys().is_empty(), "taken once");

    // OpenSSH itself finds the entry…
    let found = std::process::Command::new("ssh-keygen")
        .arg("-F")
        .arg(format!("[{LISTEN}]:{}", sshd.port))
        .arg("-f")
        .arg(&kh)
        .output()
        .expect("ssh-keygen -F");
    assert!(
        found.status.success(),
        "ssh-keygen -F: {}",
        String::from_utf8_lossy(&found.stdout)
    );
    // …and a strict transport now trusts it, without accepting anything new.
    spec.accept_new = false;
    let strict = SshTransport::new(false);
    strict.exec(&spec.build(), &cmd("true")).expect("known now");
    assert!(strict.take_accepted_host_keys().is_empty());
    assert_eq!(std::fs::read_to_string(&kh).expect("kh").lines().count(), 1);

    // The transport-wide flag does the same.
    std::fs::remove_file(&kh).expect("rm");
    let t = SshTransport::new(true);
    t.exec(&spec.build(), &cmd("true")).expect("exec");
    assert_eq!(t.take_accepted_host_keys().len(), 1);
}

#[test]
fn known_hosts_with_only_ecdsa_or_hashed_entries() {
    let sshd = Sshd::start_with_host_keys(&["ed25519", "ecdsa"]);
    let t = SshTransport::new(false);
    // libssh2 would negotiate ed25519 and call the ecdsa entry a mismatch.
    let mut spec = NodeSpec::new("n1", &sshd);
    spec.known_hosts = sshd.known_hosts(&["ecdsa"]);
    assert_eq!(
        t.exec(&spec.build(), &cmd("echo ok"))
            .expect("ecdsa-only known_hosts")
            .stdout
            .text,
        "ok\n"
    );

    // Hashed entries (HashKnownHosts yes), as ssh-keygen -H writes them.
    let hashed = sshd.known_hosts(&["ed25519"]);
    let ok = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .expect("ssh-keygen -H");
    assert!(ok.status.success());
    let text = std::fs::read_to_string(&hashed).expect("read");
    assert!(text.starts_with("|1|") && !text.contains(LISTEN), "{text}");
    let mut spec = NodeSpec::new("n2", &sshd);
    spec.known_hosts = hashed;
    assert_eq!(
        t.exec(&spec.build(), &cmd("echo ok"))
            .expect("hashed known_hosts")
            .stdout
            .text,
        "ok\n"
    );
}

#[test]
fn ssh_agent_authentication() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The agent holds an unauthorized key first, then the authorized one: every key is tried.
    let stranger = dir.path().join("stranger");
    sshd::keygen(&stranger, "ed25519", "");
    let agent = Agent::start(&[&stranger, &sshd.client_key]);
    let mut spec = NodeSpec::new("n1", &sshd);
    spec.identity_file = None;
    let t = SshTransport::new(false).with_agent_socket(&agent.socket);
    assert_eq!(
        t.exec(&spec.build(), &cmd("echo via-agent"))
            .expect("agent auth")
            .stdout
            .text,
        "via-agent\n"
    );

    let empty = Agent::start(&[&stranger]);
    let t = SshTransport::new(false).with_agent_socket(&empty.socket);
    let err = t
        .exec(&spec.build(), &cmd("true"))
        .expect_err("no usable key");
    assert!(matches!(err, TransportError::Auth { .. }), "{err:?}");
}

#[test]
fn encrypted_identity_file_and_passphrases() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("id_locked");
    sshd::keygen(&key, "ed25519", "correct horse");
    sshd.authorize(&key.with_extension("pub"));
    let mut spec = NodeSpec::new("n1", &sshd);
    spec.identity_file = Some(key.clone());
    let node = spec.build();

    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a = asked.clone();
    let t = SshTransport::new(false).with_passphrase_callback(move |_| {
        a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some("correct horse".into())
    });
    assert_eq!(
        t.exec(&node, &cmd("echo unlocked"))
            .expect("right passphrase")
            .stdout
            .text,
        "unlocked\n"
    );
    t.disconnect_all();
    t.exec(&node, &cmd("true")).expect("second connection");
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "asked once per key"
    );

    let t = SshTransport::new(false).with_passphrase_callback(|_| Some("wrong".into()));
    let err = t.exec(&node, &cmd("true")).expect_err("wrong passphrase");
    let msg = err.to_string();
    assert!(matches!(err, TransportError::Auth { .. }), "{err:?}");
    assert!(msg.contains("wrong passphrase"), "{msg}");
    assert!(!msg.contains("Unsupported private key format"), "{msg}");

    if std::env::var_os(nats_rescue::ssh::PASSPHRASE_ENV).is_none() {
        let err = SshTransport::new(false)
            .exec(&node, &cmd("true"))
            .expect_err("no passphrase");
        assert!(
            err.to_string().contains(nats_rescue::ssh::PASSPHRASE_ENV),
            "{err}"
        );
    }
}

#[test]
fn unreachable_nodes_cost_at_most_the_connect_timeout() {
    let sshd = Sshd::start();
    let t = SshTransport::new(false);

    // Nothing listens: refused at once.
    let mut spec = NodeSpec::new("closed", &sshd);
    spec.port = sshd::free_port(LISTEN);
    let started = Instant::now();
    let err = t
        .exec(&spec.build(), &cmd("true"))
        .expect_err("closed port");
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Accepts TCP, never speaks SSH: bounded by connect_timeout (1s here), not a hang.
    let silent = SilentPort::open();
    let mut spec = NodeSpec::new("silent", &sshd);
    spec.port = silent.port;
    spec.connect_timeout = "1s";
    let started = Instant::now();
    let err = t
        .exec(&spec.build(), &cmd("true"))
        .expect_err("silent port");
    let took = started.elapsed();
    assert!(
        matches!(err, TransportError::ConnectTimeout { .. }),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
}

#[test]
fn a_dead_cached_session_is_replaced() {
    let sshd = Sshd::start();
    let node = sshd.node("n1");
    let t = SshTransport::new(false);
    t.exec(&node, &cmd("true")).expect("first");
    // Kill this connection's sshd process on the node: sh's parent is `timeout`, whose
    // parent is the per-connection sshd.
    let _ = t.exec(&node, &cmd("kill -9 $(ps -o ppid= -p $PPID)"));
    let out = t.exec(&node, &cmd("echo again")).expect("reconnected");
    assert_eq!(out.stdout.text, "again\n");
    assert_eq!(sshd.logins(), 2, "{}", sshd.log());
}

fn monitor_node(sshd: &Sshd, mode: &'static str, port: u16) -> Node {
    let mut spec = NodeSpec::new("n1", sshd);
    spec.monitor = mode;
    spec.monitor_port = port;
    spec.build()
}

#[test]
fn monitoring_through_the_ssh_session() {
    let sshd = Sshd::start();
    // Bound to 127.0.0.1 only; the node's address is 127.0.0.2, so only the tunnel reaches it.
    let http = HttpServer::start("127.0.0.1");
    let t = SshTransport::new(false);

    let direct = monitor_node(&sshd, "direct", http.port);
    let err = t
        .http_get(&direct, "/varz", Duration::from_secs(3))
        .expect_err("not reachable directly");
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");

    let node = monitor_node(&sshd, "ssh", http.port);
    let r = t
        .http_get(&node, "/varz", Duration::from_secs(5))
        .expect("through ssh");
    assert_eq!((r.status, r.via), (200, "ssh"));
    assert_eq!(r.body, VARZ);
    let r = t
        .http_get(&node, "/chunked", Duration::from_secs(5))
        .expect("chunked");
    assert_eq!((r.status, r.body.as_str()), (200, VARZ));
    let r = t
        .http_get(&node, "/nope", Duration::from_secs(5))
        .expect("404 is an answer");
    assert_eq!(r.status, 404);

    // A monitor bound to the node's own address only (not loopback) is found too.
    let on_host_only = HttpServer::start(LISTEN);
    let r = t
        .http_get(
            &monitor_node(&sshd, "ssh", on_host_only.port),
            "/varz",
            Duration::from_secs(5),
        )
        .expect("through ssh to the node's address");
    assert_eq!((r.status, r.via, r.body.as_str()), (200, "ssh", VARZ));

    // Nothing on the remote port: an error, and the session stays usable.
    let dead = monitor_node(&sshd, "ssh", sshd::free_port("127.0.0.1"));
    let err = t
        .http_get(&dead, "/varz", Duration::from_secs(3))
        .expect_err("nothing listens");
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert_eq!(
        t.exec(&node, &cmd("echo still")).expect("exec").stdout.text,
        "still\n"
    );
    assert_eq!(
        sshd.logins(),
        1,
        "tunnels reuse the node's session: {}",
        sshd.log()
    );
}

#[test]
fn auto_monitoring_prefers_direct_and_falls_back_to_ssh() {
    let sshd = Sshd::start();
    let t = SshTransport::new(false);

    let local_only = HttpServer::start("127.0.0.1");
    let r = t
        .http_get(
            &monitor_node(&sshd, "auto", local_only.port),
            "/varz",
            Duration::from_secs(5),
        )
        .expect("auto");
    assert_eq!((r.status, r.via, r.body.as_str()), (200, "ssh", VARZ));

    let reachable = HttpServer::start(LISTEN);
    let r = t
        .http_get(
            &monitor_node(&sshd, "auto", reachable.port),
            "/varz",
            Duration::from_secs(5),
        )
        .expect("auto");
    assert_eq!((r.status, r.via, r.body.as_str()), (200, "direct", VARZ));
}

#[test]
fn run_parallel_fans_out_and_an_unreachable_node_stalls_nobody() {
    let servers: Vec<Sshd> = (0..3).map(|_| Sshd::start()).collect();
    let nodes: Vec<Node> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| s.node(&format!("n{}", i + 1)))
        .collect();
    let t = SshTransport::new(false);
    let sleepy = |_: &Node| RemoteCommand::new("sleep 0.2; hostname", Duration::from_secs(10));

    // Warm the three sessions, then time one command alone per node.
    for n in &nodes {
        t.exec(n, &sleepy(n)).expect("warm-up");
    }
    let mut slowest_single = Duration::ZERO;
    let mut fastest_single = Duration::MAX;
    for n in &nodes {
        let d = t.exec(n, &sleepy(n)).expect("single").duration;
        slowest_single = slowest_single.max(d);
        fastest_single = fastest_single.min(d);
    }
    // 20 commands spread over the 3 nodes, all at once.
    let twenty: Vec<&Node> = (0..20).map(|i| &nodes[i % 3]).collect();
    let started = Instant::now();
    let results = t.run_parallel(&twenty, sleepy, 20);
    let wall = started.elapsed();
    eprintln!("run_parallel: 20 x `sleep 0.2; hostname` on 3 sshd: wall {wall:?}, slowest single {slowest_single:?}");
    assert_eq!(results.len(), 20);
    for (i, (name, r)) in results.iter().enumerate() {
        assert_eq!(
            name,
            &nodes[i % 3].name,
            "results keep the order of the input"
        );
        let out = r.as_ref().expect("command ran");
        assert!(
            out.success() && !out.stdout.text.trim().is_empty(),
            "{out:?}"
        );
    }
    // One after the other would take at least 20 x the fastest single command. (A single
    // command costs more than its 0.2 s sleep: the remote login shell starts each time.)
    let serial = fastest_single * 20;
    assert!(
        wall < serial / 2,
        "wall {wall:?} vs serial estimate {serial:?}"
    );

    // One node that never answers costs its own timeout, not everyone's.
    let silent = SilentPort::open();
    let mut spec = NodeSpec::new("silent", &servers[0]);
    spec.port = silent.port;
    spec.connect_timeout = "2s";
    let stuck = spec.build();
    let mixed: Vec<&Node> = vec![&stuck, &nodes[0], &nodes[1], &nodes[2]];
    let started = Instant::now();
    let results = t.run_parallel(&mixed, sleepy, 4);
    let wall = started.elapsed();
    assert!(
        matches!(results[0].1, Err(TransportError::ConnectTimeout { .. })),
        "{:?}",
        results[0].1
    );
    for (name, r) in &results[1..] {
        let out = r.as_ref().expect("reachable nodes answer");
        assert!(out.success(), "{name}: {out:?}");
        assert!(
            out.duration < Duration::from_millis(1900),
            "{name} waited for the stuck node: {:?}",
            out.duration
        );
    }
    assert!(wall < Duration::from_secs(4), "wall {wall:?}");
}

/// The target's node, reached through `hops` (each `user@LISTEN:port`), with a known_hosts
/// holding `known` (host:port, public key file) pairs.
fn jumped_node(target: &Sshd, hops: &[&Sshd], known: &[(u16, PathBuf)]) -> Node {
    let mut spec = NodeSpec::new("n1", target);
    let kh = target.dir.path().join("known_hosts_jump");
    let text: String = known
        .iter()
        .map(|(port, key)| format!("[{LISTEN}]:{port} {}\n", sshd::pub_key(key)))
        .collect();
    std::fs::write(&kh, text).expect("known_hosts");
    spec.known_hosts = kh;
    let mut node = spec.build();
    node.ssh.proxy_jump = hops
        .iter()
        .map(|h| nats_rescue::inventory::JumpHost {
            user: Some(h.user.clone()),
            host: LISTEN.into(),
            port: Some(h.port),
        })
        .collect();
    node
}

#[test]
fn through_jump_hosts_with_every_host_key_checked() {
    let (jump, target) = (Sshd::start(), Sshd::start());
    // One key for every hop, as `ssh -J` with one identity.
    jump.authorize(&target.client_key.with_extension("pub"));
    let both = [
        (jump.port, jump.host_pub("ed25519")),
        (target.port, target.host_pub("ed25519")),
    ];
    let node = jumped_node(&target, &[&jump], &both);
    let t = SshTransport::new(false);
    let out = t
        .exec(&node, &cmd("echo through"))
        .expect("exec through the jump");
    assert_eq!(out.stdout.text, "through\n");
    assert_eq!((jump.logins(), target.logins()), (1, 1), "{}", jump.log());

    // Monitoring through the node's jumped session.
    let http = HttpServer::start("127.0.0.1");
    let mut mon = node.clone();
    mon.nats.monitor = nats_rescue::inventory::MonitorMode::Ssh;
    mon.nats.monitor_port = http.port;
    let r = t
        .http_get(&mon, "/varz", Duration::from_secs(5))
        .expect("monitoring through the jump");
    assert_eq!((r.status, r.via, r.body.as_str()), (200, "ssh", VARZ));

    // A chain: the jump host twice, then the node (OpenSSH -J a,a).
    let chain = jumped_node(&target, &[&jump, &jump], &both);
    let out = SshTransport::new(false)
        .exec(&chain, &cmd("echo chained"))
        .expect("exec through two hops");
    assert_eq!(out.stdout.text, "chained\n");

    // The jump host's key changed: refused, and the hop is named.
    let wrong = [
        (jump.port, target.host_pub("ed25519")),
        (target.port, target.host_pub("ed25519")),
    ];
    let err = SshTransport::new(false)
        .exec(&jumped_node(&target, &[&jump], &wrong), &cmd("true"))
        .expect_err("changed hop key");
    match &err {
        TransportError::HostKeyChanged { host, .. } => {
            assert!(host.starts_with("jump host"), "{err}");
            assert!(host.contains(&jump.port.to_string()), "{err}");
        }
        other => panic!("expected HostKeyChanged, got {other:?}"),
    }
    // An unknown hop key is refused just the same.
    let err = SshTransport::new(false)
        .exec(&jumped_node(&target, &[&jump], &both[1..]), &cmd("true"))
        .expect_err("unknown hop key");
    assert!(
        matches!(&err, TransportError::HostKeyUnknown { host, .. } if host.starts_with("jump host")),
        "{err:?}"
    );

    // The jump host is down: the error names it.
    let mut down = node.clone();
    down.ssh.proxy_jump[0].port = Some(sshd::free_port(LISTEN));
    let err = SshTransport::new(false)
        .exec(&down, &cmd("true"))
        .expect_err("jump host down");
    assert!(
        matches!(&err, TransportError::Connect { addr, .. } if addr.starts_with("jump host")),
        "{err:?}"
    );
}
