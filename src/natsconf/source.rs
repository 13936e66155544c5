//! Where config text comes from: files read through [`Fs`] (locally, or over SSH later), and
//! how `include` paths are resolved.

use super::span::{FileId, Span};
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Reads config files. [`LocalFs`] reads this machine; a remote implementation reads a node.
pub trait Fs {
    fn read(&self, path: &Path) -> io::Result<String>;
}

/// The local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalFs;

impl Fs for LocalFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Files held in memory (texts already fetched from a node, tests).
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: BTreeMap<PathBuf, String>,
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Adds a file (builder style).
    pub fn with(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> MemFs {
        self.insert(path, text);
        self
    }

    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.files.insert(normalize(&path.into()), text.into());
    }
}

impl Fs for MemFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files.get(&normalize(path)).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )
        })
    }
}

/// Reads nothing: for parsing one text on its own (includes are recorded, not followed).
pub(crate) struct NoFs;

impl Fs for NoFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} not read: includes are not followed here",
                path.display()
            ),
        ))
    }
}

/// Variables a config can use besides its own keys (the server reads its environment).
pub type Env = BTreeMap<String, String>;

/// How a file came to be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The file asked for.
    Main,
    /// Named by `include` at `span` of file `from`.
    Included { from: FileId, span: Span },
    /// The value of environment entry `name`, parsed as `pk=<value>` the way the server does.
    Env { name: String },
}

/// One parsed text and its path.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
    pub origin: Origin,
}

/// An `include` directive and the file it brought in.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    /// The file holding the directive.
    pub from: FileId,
    /// `include <path>` including the keyword.
    pub span: Span,
    /// The path as written.
    pub written: String,
    /// Where it resolves to.
    pub path: PathBuf,
    /// The parsed file, `None` when includes were not followed.
    pub file: Option<FileId>,
}

/// The path nats-server opens for `include <written>` found in `including`: the including
/// file's directory joined with the written path. The server joins even an absolute path
/// (Go's `filepath.Join`), so `include /etc/x.conf` in `/etc/nats/nats.conf` opens
/// `/etc/nats/etc/x.conf`; verified with nats-server 2.9.10 and 2.15.1.
pub fn resolve_include(including: &Path, written: &str) -> PathBuf {
    let dir = including.parent().unwrap_or(Path::new(""));
    let rel = written.trim_start_matches('/');
    normalize(&dir.join(rel))
}

/// Lexical clean-up (`a/./b/../c` → `a/c`) without touching the file system.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_normal =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_paths_resolve_like_the_server() {
        let main = Path::new("/etc/nats/nats.conf");
        assert_eq!(
            resolve_include(main, "./cluster.conf"),
            PathBuf::from("/etc/nats/cluster.conf")
        );
        assert_eq!(
            resolve_include(main, "../shared/a.conf"),
            PathBuf::from("/etc/shared/a.conf")
        );
        assert_eq!(
            resolve_include(main, "/etc/x.conf"),
            PathBuf::from("/etc/nats/etc/x.conf")
        );
        assert_eq!(
            resolve_include(Path::new("nats.conf"), "a.conf"),
            PathBuf::from("a.conf")
        );
    }

    #[test]
    fn mem_fs_finds_normalized_paths() {
        let fs = MemFs::new().with("/a/b/../c.conf", "x");
        assert_eq!(fs.read(Path::new("/a/c.conf")).unwrap(), "x");
        assert!(fs.read(Path::new("/a/d.conf")).is_err());
    }
}
