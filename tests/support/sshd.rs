//! A real OpenSSH server per test, on 127.0.0.2:<free port>, with its own host keys,
//! an authorized client key, and everything in a temp dir. Killed by PID on drop.
//! Also: an ssh-agent, a tiny HTTP server standing in for a NATS monitoring port, and a
//! "silent" TCP port that accepts connections and never speaks.

use nats_rescue::inventory::{Inventory, Node};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The address test servers listen on. Not 127.0.0.1, so that a monitoring server bound to
/// 127.0.0.1 only is unreachable "from outside" but reachable through the SSH session.
pub const LISTEN: &str = "127.0.0.2";

pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// `ssh-keygen -t <kind>` into `path` (and `path.pub`).
pub fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            "nats-rescue-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok, "ssh-keygen -t {kind} failed");
}

/// `SHA256:…` as `ssh-keygen -l` prints it: the independent reference for fingerprints.
pub fn ssh_keygen_fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .expect("ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_string()
}

/// `type base64` of a .pub file.
pub fn pub_key(pub_file: &Path) -> String {
    let text = std::fs::read_to_string(pub_file).expect("read .pub");
    let mut f = text.split_whitespace();
    format!("{} {}", f.next().expect("type"), f.next().expect("key"))
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct Sshd {
    pub dir: TempDir,
    pub port: u16,
    pub user: String,
    /// Unencrypted ed25519 client key, authorized.
    pub client_key: PathBuf,
    child: Child,
}

impl Sshd {
    /// sshd with an ed25519 host key.
    pub fn start() -> Sshd {
        Sshd::start_with_host_keys(&["ed25519"])
    }

    /// sshd with one host key per type (`ed25519`, `ecdsa`, `rsa`).
    pub fn start_with_host_keys(kinds: &[&str]) -> Sshd {
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mut config = String::new();
        for k in kinds {
            let key = d.join(format!("ssh_host_{k}_key"));
            keygen(&key, k, "");
            config.push_str(&format!("HostKey {}\n", key.display()));
        }
        let client_key = d.join("id_ed25519");
        keygen(&client_key, "ed25519", "");
        std::fs::write(
            d.join("authorized_keys"),
            format!("{}\n", pub_key(&client_key.with_extension("pub"))),
        )
        .expect("authorized_keys");
        let port = free_port(LISTEN);
        // Debian's bash sources ~/.bashrc for commands run by sshd when SHLVL (after its own
        // increment) is below 2; root's .bashrc here runs `pyenv init`, ~0.2 s of CPU per
        // command, which only adds noise to timing assertions. SHLVL=1 skips it.
        config.push_str(&format!(
            "Port {port}\nListenAddress {LISTEN}\nPidFile {pid}\nAuthorizedKeysFile {ak}\nUsePAM no\nStrictModes no\n\
             PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             AllowTcpForwarding yes\nLogLevel VERBOSE\nSetEnv SHLVL=1\n",
            pid = d.join("sshd.pid").display(),
            ak = d.join("authorized_keys").display(),
        ));
        let config_path = d.join("sshd_config");
        std::fs::write(&config_path, config).expect("sshd_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("sshd.log");
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/sshd");
        let mut sshd = Sshd {
            dir,
            port,
            user: current_user(),
            client_key,
            child,
        };
        sshd.wait_ready();
        sshd
    }

    fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}: {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect((LISTEN, self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd did not come up on {LISTEN}:{}: {}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Number of successful logins so far (sshd logs one line per authenticated connection).
    pub fn logins(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Accepted publickey"))
            .count()
    }

    pub fn host_pub(&self, kind: &str) -> PathBuf {
        self.dir.path().join(format!("ssh_host_{kind}_key.pub"))
    }

    pub fn host_fingerprint(&self, kind: &str) -> String {
        ssh_keygen_fingerprint(&self.host_pub(kind))
    }

    /// A known_hosts file (in the server's temp dir) listing the given host key types.
    pub fn known_hosts(&self, kinds: &[&str]) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("known_hosts_{}", kinds.join("_")));
        let text: String = kinds
            .iter()
            .map(|k| format!("[{LISTEN}]:{} {}\n", self.port, pub_key(&self.host_pub(k))))
            .collect();
        std::fs::write(&path, text).expect("known_hosts");
        path
    }

    /// Authorizes one more client public key.
    pub fn authorize(&self, pub_file: &Path) {
        let ak = self.dir.path().join("authorized_keys");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(ak)
            .expect("authorized_keys");
        writeln!(f, "{}", pub_key(pub_file)).expect("append authorized key");
    }

    /// A node reaching this server with the client key and a known_hosts holding its key.
    pub fn node(&self, name: &str) -> Node {
        NodeSpec::new(name, self).build()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Inventory fields of one test node; `build` writes YAML and parses it as the tool does.
pub struct NodeSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub accept_new: bool,
    pub connect_timeout: &'static str,
    pub monitor: &'static str,
    pub monitor_port: u16,
}

impl NodeSpec {
    pub fn new(name: &str, sshd: &Sshd) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            host: LISTEN.into(),
            port: sshd.port,
            user: sshd.user.clone(),
            identity_file: Some(sshd.client_key.clone()),
            known_hosts: sshd.known_hosts(&["ed25519"]),
            accept_new: false,
            connect_timeout: "3s",
            monitor: "direct",
            monitor_port: 8222,
        }
    }

    pub fn build(&self) -> Node {
        let identity = match &self.identity_file {
            Some(p) => format!("identity_file: {:?}, ", p.display().to_string()),
            None => String::new(),
        };
        let yaml = format!(
            "cluster: test\nnodes:\n  - name: {name}\n    host: {host:?}\n    ssh: {{ user: {user:?}, port: {port}, {identity}known_hosts: {kh:?}, \
             connect_timeout: {ct}, command_timeout: 30s, accept_new_host_keys: {an} }}\n    nats: {{ monitor: {mon}, monitor_port: {mp} }}\n",
            name = self.name,
            host = self.host,
            user = self.user,
            port = self.port,
            kh = self.known_hosts.display().to_string(),
            ct = self.connect_timeout,
            an = self.accept_new,
            mon = self.monitor,
            mp = self.monitor_port,
        );
        let inv = Inventory::parse(Path::new("test-inventory.yaml"), &yaml)
            .unwrap_or_else(|e| panic!("test inventory does not parse: {e}\n{yaml}"));
        inv.nodes.into_iter().next().expect("one node")
    }
}

/// `ssh-agent -D -a <sock>` holding the given keys. Killed by PID on drop.
pub struct Agent {
    pub socket: PathBuf,
    _dir: TempDir,
    child: Child,
}

impl Agent {
    pub fn start(keys: &[&Path]) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let agent = Agent {
            socket,
            _dir: dir,
            child,
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !agent.socket.exists() {
            assert!(Instant::now() < until, "ssh-agent socket did not appear");
            std::thread::sleep(Duration::from_millis(20));
        }
        for k in keys {
            let ok = Command::new("ssh-add")
                .arg(k)
                .env("SSH_AUTH_SOCK", &agent.socket)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("ssh-add")
                .success();
            assert!(ok, "ssh-add {} failed", k.display());
        }
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP server standing in for a NATS monitoring port. Serves `/varz` (JSON with
/// `Content-Length`), `/chunked` (chunked JSON) and 404 otherwise. Lives until the test
/// process exits.
pub struct HttpServer {
    pub port: u16,
}

pub const VARZ: &str = r#"{"server_id":"NTEST","server_name":"n1","version":"2.10.25","jetstream":{"meta":{"leader":"n1"}}}"#;

impl HttpServer {
    pub fn start(ip: &str) -> HttpServer {
        let listener = TcpListener::bind((ip, 0)).expect("bind http");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || serve(conn));
            }
        });
        HttpServer { port }
    }
}

fn serve(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let response = match path.as_str() {
        "/varz" => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{VARZ}",
            VARZ.len()
        ),
        "/chunked" => {
            let (a, b) = VARZ.split_at(10);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        }
        _ => "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_string(),
    };
    let _ = conn.write_all(response.as_bytes());
}

/// A port that completes TCP connections and then never says a word (a hung sshd, or a
/// firewall that swallows packets after the handshake). Kept open while the value lives.
pub struct SilentPort {
    pub port: u16,
    _listener: TcpListener,
}

impl SilentPort {
    pub fn open() -> SilentPort {
        let listener = TcpListener::bind((LISTEN, 0)).expect("bind silent port");
        let port = listener.local_addr().expect("addr").port();
        SilentPort {
            port,
            _listener: listener,
        }
    }
}
