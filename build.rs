//! Embeds every `runbooks/*.yaml` in the binary (built-in runbooks), and the commit the
//! binary was built from in `--version` (see `version()`).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rustc-env=NATS_RESCUE_VERSION={}", version());
    println!("cargo:rerun-if-changed=runbooks");
    let dir = std::path::Path::new("runbooks");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(std::result::Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// (file name, text) of every built-in runbook.\npub static BUILTIN: &[(&str, &str)] = &[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let abs = std::fs::canonicalize(&f).unwrap_or(f.clone());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("builtin_runbooks.rs");
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("cannot write builtin_runbooks.rs: {e}"));
}

/// `0.1.0 (a1b2c3d 2026-12-02)`: the package version, the short commit (`-dirty` when the
/// sources differ from it) and the commit's date. `NATS_RESCUE_BUILD_COMMIT` overrides the
/// part in parentheses (a packager building from a tarball); without it and without a git
/// checkout of this very crate (`cargo install` from crates.io, a tarball) it is just the
/// package version.
///
/// Only release-like profiles (`release`, `dist`, `cargo install`) ask git and watch HEAD.
/// Dev and test builds say `0.1.0` and watch nothing extra: a commit must not rebuild the
/// whole test suite, and a stale commit in `--version` would be worse than none.
fn version() -> String {
    let pkg = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=NATS_RESCUE_BUILD_COMMIT");
    if let Ok(v) = std::env::var("NATS_RESCUE_BUILD_COMMIT") {
        let v = v.trim();
        return if v.is_empty() {
            pkg
        } else {
            format!("{pkg} ({v})")
        };
    }
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return pkg;
    }
    match git_commit() {
        Some(c) => format!("{pkg} ({c})"),
        None => pkg,
    }
}

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .env("TZ", "UTC")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `a1b2c3d 2026-12-02` or `a1b2c3d-dirty 2026-12-02`; `None` outside a git checkout of
/// this crate (a tarball unpacked inside some other repository must not borrow its commit).
fn git_commit() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(&manifest).ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "--short=7", "HEAD"])?;
    let date = git(&["log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d"])?;
    watch_head();
    // Rerun when the sources change so that the dirty flag follows them (they rebuild the
    // crate anyway); a path that does not exist would make cargo rerun on every build.
    for p in ["src", "runbooks", "build.rs", "Cargo.toml", "Cargo.lock"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "runbooks",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_some_and(|s| !s.is_empty());
    Some(format!(
        "{commit}{} {date}",
        if dirty { "-dirty" } else { "" }
    ))
}

/// Reruns when HEAD moves: HEAD itself (a checkout), the branch's ref (a commit), or
/// packed-refs. In a worktree `.git` is a file, so the paths come from git.
fn watch_head() {
    let (Some(git_dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return;
    };
    let mut paths = vec![Path::new(&git_dir).join("HEAD")];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let loose = Path::new(&common).join(&r);
        // A branch only in packed-refs gets a loose ref on its next commit: watch its folder.
        paths.push(if loose.exists() {
            loose
        } else {
            loose.parent().map(Path::to_path_buf).unwrap_or(loose)
        });
    }
    paths.push(Path::new(&common).join("packed-refs"));
    for p in paths.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
