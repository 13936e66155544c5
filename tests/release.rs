//! `scripts/release.sh` end to end (issue #16, packaging): the script runs once (a real
//! `cargo build --profile dist --features static` with OpenSSL linked statically, what CI
//! builds), then each test checks what a user of the artefacts would: the binary needs no
//! libssl/libssh2, names its commit, reads a real lab; the .deb installs and removes with dpkg; the man page renders; the
//! completions parse; the checksums match.
//!
//! dpkg installs into a throwaway root (`dpkg --root`) whose database is a copy of this
//! machine's: Depends is checked against the real installed libc6, and the machine's own
//! package database, shared with other engineers and runs, is never touched.

use crate::support::lab::{modern_server, require_root, text, Lab};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `dist/` after one run of scripts/release.sh (shared by the tests of this module).
fn dist() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let t0 = Instant::now();
            let o = Command::new("bash")
                .arg("scripts/release.sh")
                .current_dir(repo())
                .output()
                .expect("run scripts/release.sh");
            eprintln!(
                "release: scripts/release.sh took {:.0}s",
                t0.elapsed().as_secs_f64()
            );
            if o.status.success() {
                Ok(repo().join("dist"))
            } else {
                Err(text(&o))
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("scripts/release.sh failed:\n{e}"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn git(args: &[&str]) -> String {
    ok(Command::new("git")
        .args(args)
        .env("TZ", "UTC")
        .current_dir(repo()))
    .trim()
    .to_string()
}

fn deb(dist: &Path) -> PathBuf {
    let arch = ok(Command::new("dpkg").arg("--print-architecture"));
    dist.join(format!("nats-rescue_{VERSION}_{}.deb", arch.trim()))
}

#[test]
fn the_release_binary_needs_only_the_c_library_and_names_its_commit() {
    let bin = dist().join("nats-rescue");
    let ldd = ok(Command::new("ldd").arg(&bin));
    assert!(
        ldd.contains("libc.so.6"),
        "a glibc-dynamic executable: {ldd}"
    );
    for lib in ["libssl", "libcrypto", "libssh2", "libz."] {
        assert!(
            !ldd.contains(lib),
            "{lib} must be linked statically:\n{ldd}"
        );
    }
    // The commit of HEAD, `-dirty` exactly when the sources the binary is built from differ.
    let commit = git(&["rev-parse", "--short=7", "HEAD"]);
    let date = git(&["log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d"]);
    let changed = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "runbooks",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ]);
    let dirty = if changed.is_empty() { "" } else { "-dirty" };
    let v = ok(Command::new(&bin).arg("--version"));
    assert_eq!(
        v.trim(),
        format!("nats-rescue {VERSION} ({commit}{dirty} {date})")
    );
}

#[test]
fn the_release_binary_reads_a_real_lab() {
    require_root();
    let bin = dist().join("nats-rescue");
    let lab = Lab::up(&modern_server(), 3);
    let journal = tempfile::tempdir().expect("tempdir");
    // Just after `lab up` the servers may still be catching up with the new leader.
    let deadline = Instant::now() + Duration::from_secs(90);
    let o = loop {
        let o = run(Command::new(&bin)
            .arg("-i")
            .arg(&lab.inventory)
            .arg("--journal-dir")
            .arg(journal.path())
            .args(["status", "--json"]));
        if o.status.code() == Some(0) || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(o.status.code(), Some(0), "healthy lab:\n{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status --json");
    let s = j.to_string();
    for n in lab.node_names() {
        assert!(s.contains(&format!("\"{n}\"")), "{n} in {s}");
    }
    // Over SSH (vendored OpenSSL + libssh2) and HTTP: the human table says so per node.
    let o = run(Command::new(&bin)
        .arg("-i")
        .arg(&lab.inventory)
        .arg("--journal-dir")
        .arg(journal.path())
        .arg("status"));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for n in lab.node_names() {
        let row = t
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("no row for {n}:\n{t}"));
        assert!(
            row.contains(" ok ") && row.contains("active"),
            "ssh ok, service active on {n}: {row}\n{t}"
        );
    }
    lab.down();
}

#[test]
fn the_deb_lists_its_files_and_installs_and_removes_with_dpkg() {
    require_root();
    let deb = deb(&dist());
    let info = ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    let arch = ok(Command::new("dpkg").arg("--print-architecture"));
    for field in [
        "Package: nats-rescue".to_string(),
        format!("Version: {VERSION}"),
        format!("Architecture: {}", arch.trim()),
        "Depends: libc6 (>= 2.".to_string(),
    ] {
        assert!(info.contains(&field), "{field} in:\n{info}");
    }
    assert!(
        !info.contains("libssl") && !info.contains("zlib1g"),
        "statically linked libraries are no dependencies:\n{info}"
    );
    let files = [
        "./usr/bin/nats-rescue",
        "./usr/share/man/man1/nats-rescue.1.gz",
        "./usr/share/man/man1/nats-rescue-status.1.gz",
        "./usr/share/bash-completion/completions/nats-rescue",
        "./usr/share/zsh/vendor-completions/_nats-rescue",
        "./usr/share/fish/vendor_completions.d/nats-rescue.fish",
        "./usr/share/doc/nats-rescue/copyright",
        "./usr/share/doc/nats-rescue/changelog.gz",
    ];
    let contents = ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for f in files {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {f}"))),
            "{f} in:\n{contents}"
        );
    }
    assert!(
        contents.contains("-rwxr-xr-x root/root") && !contents.contains("/DEBIAN"),
        "{contents}"
    );

    let root = tempfile::tempdir().expect("tempdir");
    let admin = root.path().join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).expect("dpkg admin dir");
    }
    std::fs::copy("/var/lib/dpkg/status", admin.join("status")).expect("copy dpkg status");
    let dpkg = |args: &[&str]| {
        let mut c = Command::new("dpkg");
        c.arg("--root").arg(root.path()).args(args);
        c
    };
    let installed = ok(dpkg(&["-i"]).arg(&deb));
    assert!(installed.contains("Setting up nats-rescue"), "{installed}");
    let status = ok(&mut dpkg(&["-s", "nats-rescue"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    let listed = ok(&mut dpkg(&["-L", "nats-rescue"]));
    for f in files {
        let f = f.trim_start_matches('.');
        assert!(listed.lines().any(|l| l == f), "{f} in:\n{listed}");
        assert!(root.path().join(&f[1..]).is_file(), "{f} installed");
    }
    let v = ok(Command::new(root.path().join("usr/bin/nats-rescue")).arg("--version"));
    assert!(v.starts_with(&format!("nats-rescue {VERSION} (")), "{v}");

    // The man page renders (groff warnings are an error) and the bash completion loads.
    let page = root.path().join("usr/share/man/man1/nats-rescue.1.gz");
    let o = run(Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat"));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", text(&o));
    for s in ["NAME", "SYNOPSIS", "--inventory", "diagnose", "Exit codes:"] {
        assert!(shown.contains(s), "{s} in the rendered page:\n{shown}");
    }
    let bash = root
        .path()
        .join("usr/share/bash-completion/completions/nats-rescue");
    ok(Command::new("bash").arg("-n").arg(&bash));
    let loaded = ok(Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p nats-rescue")
        .arg("bash")
        .arg(&bash));
    assert!(loaded.trim().ends_with(" nats-rescue"), "{loaded}");

    ok(&mut dpkg(&["-r", "nats-rescue"]));
    for f in files {
        // dpkg keeps conffiles only; the package has none.
        assert!(!root.path().join(&f[2..]).exists(), "{f} removed");
    }
    let o = run(&mut dpkg(&["-s", "nats-rescue"]));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("install ok installed"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_tarball_holds_the_binary_docs_and_completions_and_the_sums_match() {
    let dist = dist();
    let arch = std::env::consts::ARCH;
    let name = format!("nats-rescue-{VERSION}-{arch}-linux");
    let list = ok(Command::new("tar")
        .arg("-tzvf")
        .arg(dist.join(format!("{name}.tar.gz"))));
    for f in [
        "nats-rescue",
        "man/nats-rescue.1",
        "completions/nats-rescue.bash",
        "completions/_nats-rescue",
        "completions/nats-rescue.fish",
        "README.md",
        "CHANGELOG.md",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" {name}/{f}"))),
            "{name}/{f} in:\n{list}"
        );
    }
    assert!(list.contains("-rwxr-xr-x 0/0"), "{list}");
    let sums = ok(Command::new("sha256sum")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(&dist));
    assert_eq!(
        sums.lines().filter(|l| l.ends_with(": OK")).count(),
        3,
        "{sums}"
    );
}
