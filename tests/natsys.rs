//! The system-account client against real nats-server processes on 127.0.0.1 (2.15.1 and
//! Debian's 2.9.10): a cluster with a system account `SYS` (password and nkey users) and a
//! JetStream account `APP`, in a temp dir, every process killed by PID on drop.
//!
//! Figures (reply counts, timings) are printed with a `natsys:` prefix (`--nocapture`).

use crate::support::lab::{legacy_server, modern_server};
use crate::support::sshd::{Sshd, LISTEN};
use nats_rescue::natsys::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SYS_PASSWORD: &str = "sys-Secret-4711";
const APP_PASSWORD: &str = "app-Secret-0815";

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls every 50 ms until `f` returns Some; panics naming `what` after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> (T, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, t0.elapsed());
        }
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` on 127.0.0.1:port → (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

struct Node {
    name: String,
    client: u16,
    http: u16,
    child: Option<Child>,
}

/// N servers n1..nN in cluster `c1` (or one server without a cluster), killed on drop.
struct Cluster {
    dir: TempDir,
    nodes: Vec<Node>,
    nkey_seed_file: PathBuf,
}

struct ClusterSpec<'a> {
    bin: &'a Path,
    nodes: usize,
    /// `tls { … }` block for the client port.
    tls: Option<String>,
}

impl Cluster {
    fn start(bin: &Path, nodes: usize) -> Cluster {
        Cluster::start_spec(ClusterSpec {
            bin,
            nodes,
            tls: None,
        })
    }

    fn start_spec(spec: ClusterSpec<'_>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let kp = nkeys::KeyPair::new_user();
        let nkey_seed_file = dir.path().join("sys.nk");
        std::fs::write(&nkey_seed_file, format!("{}\n", kp.seed().unwrap())).unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..spec.nodes)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c, _)| format!("\"nats://127.0.0.1:{c}\""))
            .collect();
        let mut cluster = Cluster {
            dir,
            nodes: Vec::new(),
            nkey_seed_file,
        };
        for (i, (client, cport, http)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let d = cluster.dir.path();
            let cluster_block = if spec.nodes > 1 {
                format!(
                    "cluster {{\n  name: \"c1\"\n  listen: \"127.0.0.1:{cport}\"\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            let conf = format!(
                "server_name: \"{name}\"\nlisten: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{http}\"\n\
                 log_file: \"{log}\"\n{tls}\
                 jetstream {{ store_dir: \"{store}\" }}\n{cluster_block}\
                 accounts {{\n  SYS {{ users: [ {{user: \"sys\", password: \"{SYS_PASSWORD}\"}}, {{nkey: \"{nkey}\"}} ] }}\n  \
                 APP {{ jetstream: enabled, users: [ {{user: \"app\", password: \"{APP_PASSWORD}\"}} ] }}\n}}\n\
                 system_account: SYS\n",
                log = d.join(format!("{name}.log")).display(),
                store = d.join(&name).display(),
                nkey = kp.public_key(),
                tls = spec.tls.as_deref().unwrap_or_default(),
            );
            let path = d.join(format!("{name}.conf"));
            std::fs::write(&path, conf).unwrap();
            let child = Command::new(spec.bin)
                .arg("-c")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", spec.bin.display()));
            cluster.nodes.push(Node {
                name,
                client: *client,
                http: *http,
                child: Some(child),
            });
        }
        cluster
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    fn addr(&self, name: &str) -> String {
        format!("127.0.0.1:{}", self.node(name).client)
    }

    fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    fn alive(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.name.as_str())
            .collect()
    }

    fn kill(&mut self, name: &str) {
        let n = self.nodes.iter_mut().find(|n| n.name == name).unwrap();
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Every live server's `/healthz` is 200 (JetStream up, meta leader known and current).
    fn wait_healthy(&self, timeout: Duration) -> Duration {
        let alive = self.alive();
        let (_, took) = wait_for("every server's /healthz 200", timeout, || {
            alive
                .iter()
                .all(|n| http_get(self.node(n).http, "/healthz").is_some_and(|(s, _)| s == 200))
                .then_some(())
        });
        took
    }

    /// A ping from `c` reaches every live server (full mesh of routes).
    fn wait_routes(&self, c: &BlockingSysClient, timeout: Duration) -> Duration {
        let n = self.alive().len();
        let collect = Collect::within(Duration::from_millis(500)).expect(n);
        wait_for("every server answering a ping", timeout, || {
            (c.ping("VARZ", None, collect).ok()?.len() == n).then_some(())
        })
        .1
    }

    /// The meta leader every live server agrees on (HTTP `/jsz`).
    fn agreed_meta_leader(&self) -> Option<String> {
        let leaders: Vec<Option<String>> = self
            .alive()
            .iter()
            .map(|n| {
                let (_, body) = http_get(self.node(n).http, "/jsz")?;
                let v: Value = serde_json::from_str(&body).ok()?;
                v["meta_cluster"]["leader"].as_str().map(str::to_string)
            })
            .collect();
        let first = leaders.first()?.clone()?;
        leaders
            .iter()
            .all(|l| l.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    fn sys_options(&self, servers: &[String]) -> SysOptions {
        let mut o = SysOptions::new(
            servers.iter().cloned(),
            SysAuth::UserPassword {
                user: "sys".into(),
                password: SYS_PASSWORD.into(),
            },
        );
        o.connect_timeout = Duration::from_secs(2);
        o
    }

    fn sys(&self, name: &str) -> BlockingSysClient {
        BlockingSysClient::connect(&self.sys_options(&[self.addr(name)]))
            .unwrap_or_else(|e| panic!("connect to {name}: {e}\n{}", self.log(name)))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Creates the R3 file stream ORDERS (`orders.>`, 5 messages) and the R3 durable PROC in APP.
fn create_orders(addr: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client =
            async_nats::ConnectOptions::with_user_and_password("app".into(), APP_PASSWORD.into())
                .connect(addr)
                .await
                .unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: "ORDERS".into(),
                subjects: vec!["orders.>".into()],
                num_replicas: 3,
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .unwrap();
        for i in 0..5 {
            js.publish(format!("orders.{i}"), "x".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("PROC".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    });
}

fn names_of(replies: &[ServerReply]) -> Vec<String> {
    let mut v: Vec<String> = replies.iter().map(|r| r.server.name.clone()).collect();
    v.sort();
    v
}

fn ping_timed(
    c: &BlockingSysClient,
    kind: &str,
    body: Option<&Value>,
    collect: Collect,
) -> (Result<Vec<ServerReply>, SysError>, Duration) {
    let t0 = Instant::now();
    let r = c.ping(kind, body, collect);
    (r, t0.elapsed())
}

/// Pings, requests, auth and step-down on a 3-node cluster.
fn pings_requests_and_auth(bin: &Path, version: &str) {
    let t0 = Instant::now();
    let cl = Cluster::start(bin, 3);
    let took = cl.wait_healthy(Duration::from_secs(30));
    eprintln!("natsys: {version}: 3 servers healthy {took:?} after start");
    let all = ["n1", "n2", "n3"].map(String::from).to_vec();
    // /healthz 200 everywhere does not mean every route is up yet (FACTS §12.2).
    let took = cl.wait_routes(&cl.sys("n1"), Duration::from_secs(20));
    eprintln!("natsys: {version}: every server answers a ping from n1 {took:?} later");

    // Servers are tried in order: a dead port first, then n1.
    let dead = format!("127.0.0.1:{}", free_port());
    let c = BlockingSysClient::connect(&cl.sys_options(&[dead, cl.addr("n1")])).unwrap();
    assert_eq!(c.server().name, "n1");
    assert_eq!(c.server().version, version);
    assert_eq!(c.server().cluster.as_deref(), Some("c1"));

    for kind in ["VARZ", "JSZ", "HEALTHZ", "STATSZ"] {
        let (r, took) = ping_timed(&c, kind, None, c.default_collect().expect(3));
        let r = r.unwrap_or_else(|e| panic!("{version} {kind}: {e}"));
        assert_eq!(names_of(&r), all, "{version} {kind}");
        assert!(r.iter().all(|x| x.error.is_none() && x.data.is_object()));
        eprintln!(
            "natsys: {version}: PING.{kind} (stop at 3): {} replies in {took:?}",
            r.len()
        );
    }
    let (r, _) = ping_timed(&c, "HEALTHZ", None, c.default_collect().expect(3));
    assert!(r.unwrap().iter().all(|x| x.data["status"] == "ok"));
    // Without an expected count the full window is waited for.
    let (r, took) = ping_timed(
        &c,
        "VARZ",
        None,
        Collect::within(Duration::from_millis(700)),
    );
    assert_eq!(r.unwrap().len(), 3);
    assert!(took >= Duration::from_millis(700), "{took:?}");
    // A quiet gap ends it soon after the last reply.
    let (r, took) = ping_timed(
        &c,
        "VARZ",
        None,
        Collect::within(Duration::from_secs(5)).quiet(Duration::from_millis(200)),
    );
    assert_eq!(r.unwrap().len(), 3);
    assert!(took < Duration::from_secs(2), "{took:?}");
    eprintln!("natsys: {version}: PING.VARZ with a 200 ms quiet gap: 3 replies in {took:?}");

    let (r, took) = ping_timed(&c, "RAFTZ", None, c.default_collect().expect(3));
    if version.starts_with("2.9") {
        let e = r.unwrap_err();
        assert!(matches!(e, SysError::NoResponders { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("nats-server 2.9.10 does not answer RAFTZ"),
            "{text}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        eprintln!("natsys: {version}: PING.RAFTZ → {text:?} in {took:?}");
    } else {
        let r = r.unwrap();
        assert_eq!(names_of(&r), all);
        assert!(r
            .iter()
            .all(|x| x.data["SYS"]["_meta_"]["state"].is_string()));
        eprintln!(
            "natsys: {version}: PING.RAFTZ: {} replies in {took:?}",
            r.len()
        );
    }

    // Stream and consumer groups over the system account: `consumer`, not `consumers`.
    create_orders(&cl.addr("n2"));
    let (groups, took) = wait_for("ORDERS healthy", Duration::from_secs(20), || {
        let r = c
            .ping(
                "JSZ",
                Some(&jsz_groups_body()),
                c.default_collect().expect(3),
            )
            .ok()?;
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        let (views, errors) = ServerJsz::from_replies(&r, &names);
        assert!(errors.is_empty(), "{errors:?}");
        let g = combine(&views);
        (g.len() == 2 && g.iter().all(|x| x.healthy)).then_some(g)
    });
    eprintln!("natsys: {version}: ORDERS and PROC healthy over PING.JSZ {took:?} after creation");
    assert_eq!(groups[0].label(), "APP > ORDERS");
    assert_eq!(groups[0].messages, Some(5));
    assert_eq!(groups[1].label(), "APP > ORDERS > PROC");
    let plural = json!({"accounts": true, "streams": true, "consumers": true, "raft": true});
    let r = c
        .ping("JSZ", Some(&plural), c.default_collect().expect(3))
        .unwrap();
    let (views, _) = ServerJsz::from_replies(&r, &[]);
    let g = combine(&views);
    assert_eq!(
        g.len(),
        1,
        "{version}: \"consumers\" is ignored, only the stream is listed"
    );

    // Requests: an API error, no responders, a timeout that may still be pending.
    let r = c
        .request(
            "$JS.API.SERVER.REMOVE",
            Some(&json!({"peer": "no-such-server"})),
            Duration::from_secs(3),
            false,
        )
        .unwrap();
    assert_eq!(r.len(), 1);
    let err = r[0].error.clone().expect("an API error");
    eprintln!("natsys: {version}: SERVER.REMOVE no-such-server → {err}");
    assert!(!r[0].success());
    let e = c
        .request("test.nobody", None, Duration::from_secs(3), false)
        .unwrap_err();
    assert!(matches!(e, SysError::NoResponders { .. }), "{e}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let silent = rt.block_on(async {
        let nc =
            async_nats::ConnectOptions::with_user_and_password("sys".into(), SYS_PASSWORD.into())
                .connect(cl.addr("n3"))
                .await
                .unwrap();
        let sub = nc.subscribe("test.silent").await.unwrap();
        nc.flush().await.unwrap();
        (nc, sub)
    });
    let t = Instant::now();
    let e = wait_for(
        "interest in test.silent on n1",
        Duration::from_secs(5),
        || match c.request("test.silent", None, Duration::from_millis(300), false) {
            Err(e @ SysError::Timeout { .. }) => Some(e),
            Err(SysError::NoResponders { .. }) => None,
            other => panic!("{other:?}"),
        },
    )
    .0;
    assert!(e.maybe_pending(), "{e}");
    assert!(e.to_string().contains("may still be pending"), "{e}");
    eprintln!(
        "natsys: {version}: silent subscriber → {e} ({:?})",
        t.elapsed()
    );
    // async-nats subscribers unsubscribe on drop through the runtime.
    rt.block_on(async move { drop(silent) });

    // The app account: no system subjects, but its own JetStream API.
    let mut app = cl.sys_options(&[cl.addr("n1")]);
    app.auth = SysAuth::UserPassword {
        user: "app".into(),
        password: APP_PASSWORD.into(),
    };
    let a = BlockingSysClient::connect(&app).unwrap();
    let e = a
        .ping("VARZ", None, Collect::within(Duration::from_secs(2)))
        .unwrap_err();
    assert!(
        e.to_string().contains("is the user in the system account?"),
        "{e}"
    );
    let info = a
        .request(
            "$JS.API.STREAM.INFO.ORDERS",
            None,
            Duration::from_secs(3),
            false,
        )
        .unwrap();
    assert!(info[0].error.is_none(), "{:?}", info[0]);
    assert_eq!(info[0].body["state"]["messages"], 5);
    let e = a
        .request(
            "$JS.API.STREAM.INFO.NOPE",
            None,
            Duration::from_secs(3),
            false,
        )
        .unwrap()
        .remove(0)
        .error
        .unwrap();
    assert_eq!((e.code, e.err_code), (404, Some(10059)), "{e}");

    // Wrong password: a clear auth error without the password.
    let mut bad = cl.sys_options(&[cl.addr("n1"), cl.addr("n2")]);
    bad.auth = SysAuth::UserPassword {
        user: "sys".into(),
        password: "Wrong-Password-99".into(),
    };
    let t = Instant::now();
    let e = BlockingSysClient::connect(&bad).unwrap_err();
    let text = e.to_string();
    assert!(e.is_auth(), "{text}");
    assert!(text.contains("refused user \"sys\""), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("Wrong-Password-99") && !text.contains(SYS_PASSWORD));
    assert!(!format!("{e:?}").contains("Wrong-Password-99"));
    eprintln!(
        "natsys: {version}: wrong password → {text:?} in {:?}",
        t.elapsed()
    );

    // An nkey user of the system account.
    let mut nk = cl.sys_options(&[cl.addr("n3")]);
    nk.auth = SysAuth::NkeySeedFile(cl.nkey_seed_file.clone());
    let n = BlockingSysClient::connect(&nk).unwrap();
    assert_eq!(n.secrets().len(), 1, "the seed is known as a secret");
    let r = n.ping("VARZ", None, n.default_collect().expect(3)).unwrap();
    assert_eq!(r.len(), 3);
    let mut missing = nk.clone();
    missing.auth = SysAuth::NkeySeedFile(cl.dir.path().join("none.nk"));
    let e = BlockingSysClient::connect(&missing).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot use the nkey seed file"),
        "{e}"
    );

    // Meta leader step-down.
    let before = wait_for("an agreed meta leader", Duration::from_secs(10), || {
        cl.agreed_meta_leader()
    })
    .0;
    let t = Instant::now();
    let r = c
        .request(
            "$JS.API.META.LEADER.STEPDOWN",
            None,
            Duration::from_secs(5),
            false,
        )
        .unwrap();
    let replied = t.elapsed();
    assert!(r[0].success(), "{:?}", r[0]);
    let (after, took) = wait_for("a new meta leader", Duration::from_secs(20), || {
        cl.agreed_meta_leader().filter(|l| *l != before)
    });
    eprintln!(
        "natsys: {version}: META.LEADER.STEPDOWN replied in {replied:?}; leader {before} → {after} seen {took:?} later"
    );

    // The blocking client inside spawn_blocking on a multi-thread runtime (as engine::fanout).
    let opts = cl.sys_options(&[cl.addr("n2")]);
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = mt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            let c = BlockingSysClient::connect(&opts).unwrap();
            let n = c
                .ping("VARZ", None, c.default_collect().expect(3))
                .unwrap()
                .len();
            c.close();
            n
        })
        .await
        .unwrap()
    });
    assert_eq!(n, 3);
    c.close();
    eprintln!("natsys: {version}: whole test {:?}", t0.elapsed());
}

#[test]
fn natsys_pings_requests_and_auth_v2_15_1() {
    pings_requests_and_auth(&modern_server(), "2.15.1");
}

#[test]
fn natsys_pings_requests_and_auth_v2_9_10() {
    pings_requests_and_auth(&legacy_server(), "2.9.10");
}

/// 5 servers, R3 stream; two of its three servers killed: leaderless, two replicas missing.
fn stream_below_quorum(bin: &Path, version: &str) {
    let mut cl = Cluster::start(bin, 5);
    cl.wait_healthy(Duration::from_secs(40));
    cl.wait_routes(&cl.sys("n1"), Duration::from_secs(20));
    create_orders(&cl.addr("n1"));
    let all: Vec<String> = cl.names().iter().map(|s| s.to_string()).collect();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    let c = cl.sys("n1");
    let five = || Collect::within(Duration::from_secs(3)).expect(5);
    let (stream, _) = wait_for("ORDERS healthy", Duration::from_secs(20), || {
        let r = c.ping("JSZ", Some(&jsz_groups_body()), five()).ok()?;
        let g = combine(&ServerJsz::from_replies(&r, &names).0);
        g.into_iter()
            .find(|x| x.label() == "APP > ORDERS" && x.healthy && x.replicas.len() == 3)
    });
    c.close();
    let leader = stream.leader.clone().unwrap();
    let follower = stream
        .replicas
        .iter()
        .find(|r| **r != leader)
        .unwrap()
        .clone();
    let survivor = stream
        .replicas
        .iter()
        .find(|r| **r != leader && **r != follower)
        .unwrap()
        .clone();
    let mut killed = vec![leader.clone(), follower.clone()];
    killed.sort();
    eprintln!(
        "natsys: {version}: ORDERS leader {leader}, replicas {:?}; killing {killed:?}",
        stream.replicas
    );
    let t = Instant::now();
    for k in &killed {
        cl.kill(k);
    }
    // Any live server will do; the dead ones are skipped in order.
    let addrs: Vec<String> = all.iter().map(|n| cl.addr(n)).collect();
    let c = BlockingSysClient::connect(&cl.sys_options(&addrs)).unwrap();
    assert!(!killed.contains(&c.server().name));
    let mut first = None;
    let (g, took) = wait_for(
        "ORDERS leaderless over PING.JSZ",
        Duration::from_secs(45),
        || {
            let r = c
                .ping(
                    "JSZ",
                    Some(&jsz_groups_body()),
                    Collect::within(Duration::from_secs(3)).expect(3),
                )
                .ok()?;
            // Right after the kill a live server can miss the 3 s window (its routes to
            // the dead are still timing out on a loaded machine): ask again, the wait is
            // bounded and every verdict below needs all 3 views.
            if r.len() < 3 {
                eprintln!(
                    "natsys: {version}: {} of 3 live servers answered; again",
                    r.len()
                );
                return None;
            }
            let g = combine(&ServerJsz::from_replies(&r, &names).0);
            let s = g.into_iter().find(|x| x.label() == "APP > ORDERS")?;
            if first.is_none() {
                first = Some((t.elapsed(), s.problems.clone()));
            }
            s.leader.is_none().then_some(s)
        },
    );
    eprintln!(
        "natsys: {version}: ORDERS leaderless in the combined view {took:?} after the kill ({:?} total)",
        t.elapsed()
    );
    eprintln!("natsys: {version}: first verdict after the kill: {first:?}");
    assert!(!g.healthy && g.below_quorum);
    assert_eq!(g.replicas, stream.replicas);
    assert_eq!(g.missing, killed);
    assert_eq!(g.reported_by, vec![survivor.clone()]);
    assert_eq!(g.messages, Some(5));
    assert_eq!(g.problems[0], "no leader", "{:?}", g.problems);

    // The same verdict from HTTP bodies; the meta group still has a leader (3 of 5).
    let views: Vec<ServerJsz> = all
        .iter()
        .map(|n| ServerJsz {
            server: n.clone(),
            jsz: (!killed.contains(n)).then(|| {
                let (s, body) = http_get(cl.node(n).http, JSZ_GROUPS_QUERY).unwrap();
                assert_eq!(s, 200);
                JszView::from_http(&body).unwrap()
            }),
        })
        .collect();
    let meta = views
        .iter()
        .find_map(|v| v.jsz.as_ref()?.meta_cluster.clone())
        .unwrap();
    assert!(meta.leader().is_some(), "{meta:?}");
    assert_eq!(meta.cluster_size, Some(5));
    let http = combine(&views);
    let hs = http.iter().find(|x| x.label() == "APP > ORDERS").unwrap();
    assert_eq!((hs.leader.as_ref(), &hs.missing), (None, &killed));
    let hc = http
        .iter()
        .find(|x| x.label() == "APP > ORDERS > PROC")
        .unwrap();
    assert!(!hc.healthy, "{hc:#?}");
    assert_eq!(hc.missing, killed);
    // The survivor's /healthz: 200 on 2.15.1 (FACTS §12.1), 503 on 2.9.10.
    let (status, body) = http_get(cl.node(&survivor).http, "/healthz").unwrap();
    eprintln!("natsys: {version}: survivor {survivor} /healthz {status} {body}");

    // Waiting for 5 when only 3 can answer costs the whole window.
    let t = Instant::now();
    let r = c
        .ping(
            "VARZ",
            None,
            Collect::within(Duration::from_secs(1)).expect(5),
        )
        .unwrap();
    eprintln!(
        "natsys: {version}: PING.VARZ expecting 5 with 3 up: {} replies in {:?}",
        r.len(),
        t.elapsed()
    );
    assert_eq!(r.len(), 3);
}

#[test]
fn natsys_stream_below_quorum_v2_15_1() {
    stream_below_quorum(&modern_server(), "2.15.1");
}

#[test]
fn natsys_stream_below_quorum_v2_9_10() {
    stream_below_quorum(&legacy_server(), "2.9.10");
}

/// An SSH `direct-tcpip` channel (real sshd, ssh2) as the forwarder's stream.
#[test]
fn natsys_through_an_ssh_channel() {
    let cl = Cluster::start(&modern_server(), 1);
    cl.wait_healthy(Duration::from_secs(20));
    let sshd = Sshd::start();
    let tcp = TcpStream::connect((LISTEN, sshd.port)).unwrap();
    let mut session = ssh2::Session::new().unwrap();
    session.set_tcp_stream(tcp);
    session.handshake().unwrap();
    session
        .userauth_pubkey_file(&sshd.user, None, &sshd.client_key, None)
        .unwrap();
    let port = cl.node("n1").client;
    let opens = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let opens2 = opens.clone();
    let opener = move || -> std::io::Result<ssh2::Channel> {
        // The session is used by this (the forwarder's) thread only.
        session.set_blocking(true);
        let ch = session
            .channel_direct_tcpip("127.0.0.1", port, None)
            .map_err(std::io::Error::other);
        session.set_blocking(false);
        opens2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ch
    };
    let opts = cl.sys_options(&[format!("nats-n1:{port}")]);
    let t = Instant::now();
    let c = BlockingSysClient::connect_through(&opts, opener).unwrap();
    eprintln!("natsys: connect through SSH: {:?}", t.elapsed());
    assert_eq!(c.server().name, "n1");
    assert_eq!(c.server().address, format!("tunnel to nats-n1:{port}"));
    for i in 0..20 {
        let t = Instant::now();
        let r = c.ping("VARZ", None, c.default_collect().expect(1)).unwrap();
        assert_eq!(r.len(), 1);
        // A large reply: many SSH packets and window adjustments.
        let j = c
            .ping(
                "JSZ",
                Some(&jsz_groups_body()),
                c.default_collect().expect(1),
            )
            .unwrap();
        assert!(j[0].data["server_id"].is_string());
        if i == 0 {
            eprintln!("natsys: VARZ + JSZ through SSH: {:?}", t.elapsed());
        }
    }
    assert_eq!(opens.load(std::sync::atomic::Ordering::SeqCst), 1);
    c.close();
    assert!(sshd.logins() >= 1);
}

/// A channel that cannot be opened is a tunnel error, not a NATS one.
#[test]
fn natsys_tunnel_that_cannot_open() {
    let opts = SysOptions::new(["nats-x:4222"], SysAuth::None);
    let e = BlockingSysClient::connect_through(&opts, || -> std::io::Result<TcpStream> {
        Err(std::io::Error::other("direct-tcpip refused by the server"))
    })
    .unwrap_err();
    assert!(matches!(e, SysError::Tunnel(_)), "{e}");
    assert!(e.to_string().contains("direct-tcpip refused"), "{e}");
}

/// TLS through a local forward: verified against the configured name, not 127.0.0.1.
#[test]
fn natsys_tls_through_a_tunnel_checks_the_real_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sh = |script: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "{script}");
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca");
    sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=nats.test");
    std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:nats.test\n").unwrap();
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf");
    let tls = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
        d.join("server.pem").display(),
        d.join("server.key").display()
    );
    let cl = Cluster::start_spec(ClusterSpec {
        bin: &modern_server(),
        nodes: 1,
        tls: Some(tls),
    });
    cl.wait_healthy(Duration::from_secs(20));
    let port = cl.node("n1").client;
    let open = move || {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nonblocking(true)?;
        Ok(s)
    };
    let mut opts = cl.sys_options(&[format!("nats.test:{port}")]);
    opts.tls = Some(TlsFiles {
        ca_file: Some(d.join("ca.pem")),
        ..TlsFiles::default()
    });
    let c = BlockingSysClient::connect_through(&opts, open).unwrap();
    let r = c.ping("VARZ", None, c.default_collect().expect(1)).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].data["tls_required"], true);
    c.close();

    // Named after an address the certificate does not carry: refused.
    let mut wrong = opts.clone();
    wrong.servers = vec![format!("other.test:{port}")];
    let e = BlockingSysClient::connect_through(&wrong, open).unwrap_err();
    assert!(matches!(e, SysError::Tls { .. }), "{e}");
    eprintln!("natsys: TLS with the wrong name → {e}");
    // Directly, with server_name.
    let mut direct = cl.sys_options(&[cl.addr("n1")]);
    direct.tls = Some(TlsFiles {
        ca_file: Some(d.join("ca.pem")),
        server_name: Some("nats.test".into()),
        ..TlsFiles::default()
    });
    let c = BlockingSysClient::connect(&direct).unwrap();
    assert_eq!(c.server().name, "n1");
    // Without TLS the server refuses us; without a CA through a tunnel we refuse to try.
    let plain = cl.sys_options(&[cl.addr("n1")]);
    assert!(BlockingSysClient::connect(&plain).is_err());
    let mut no_ca = opts.clone();
    no_ca.tls = Some(TlsFiles::default());
    let e = BlockingSysClient::connect_through(&no_ca, open).unwrap_err();
    assert!(matches!(e, SysError::Options(_)), "{e}");
}

/// The server dies under an open connection: calls still end within their timeout.
#[test]
fn natsys_a_dead_server_fails_within_the_timeout() {
    let mut cl = Cluster::start(&legacy_server(), 1);
    cl.wait_healthy(Duration::from_secs(20));
    let c = cl.sys("n1");
    assert_eq!(
        c.ping("VARZ", None, c.default_collect().expect(1))
            .unwrap()
            .len(),
        1
    );
    cl.kill("n1");
    for _ in 0..2 {
        let t = Instant::now();
        let e = c
            .ping("VARZ", None, Collect::within(Duration::from_millis(500)))
            .unwrap_err();
        let took = t.elapsed();
        eprintln!("natsys: ping after the server died → {e} in {took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
        assert!(
            matches!(e, SysError::Timeout { .. } | SysError::Request { .. }),
            "{e}"
        );
    }
    let e = BlockingSysClient::connect(&cl.sys_options(&[cl.addr("n1")])).unwrap_err();
    assert!(
        e.to_string().contains("connection refused") || e.to_string().contains("refused"),
        "{e}"
    );
    eprintln!("natsys: connect to a dead server → {e}");
}
