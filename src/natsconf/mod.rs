//! The nats-server config format, parsed with positions, and the one edit nats-rescue makes to
//! it: replacing `cluster.routes` while keeping every other byte.
//!
//! Stages: text → `lexer.rs` (context-driven scanning) → `parser.rs` (entries, arrays, blocks,
//! `include`, `$VARIABLES`) → [`Value`] tree with a [`Span`] and [`FileId`] on every value →
//! [`Config`] (typed settings: server name, ports, cluster, routes, JetStream store, accounts).
//! [`rewrite_routes`] splices a new routes array into the file the routes live in;
//! [`redact`] takes secrets out of a config text.
//!
//! The grammar follows nats-server's own `conf/lex.go` and `conf/parse.go`: `key: value`,
//! `key = value`, `key value`; `#` and `//` comments; blocks and arrays on one line or many,
//! separated by new lines, `,` or `;`; whole JSON documents (as the Helm chart renders them);
//! `include` relative to the including file; `$NAME` from an earlier key or the environment.
//! One deliberate difference: a variable nothing defines is kept as unresolved
//! ([`Setting::Unresolved`]) instead of failing the parse, because the environment of the
//! server (e.g. `$SERVER_NAME` in a pod) is usually not the caller's.

mod config;
mod error;
mod lexer;
mod parser;
mod redact;
mod rewrite;
mod route;
mod source;
mod span;
mod value;

pub use config::{
    Account, Authorization, Cluster, Config, HostPort, Monitoring, Route, Routes, Setting,
};
pub use error::{ConfError, Location};
pub use lexer::Quote;
pub use redact::redact;
pub use rewrite::{rewrite_routes, RewriteError, Rewritten};
pub use route::{build_routes, Endpoint, RouteUrl, RouteUrlError, DEFAULT_CLUSTER_PORT};
pub use source::{resolve_include, Env, Fs, Include, LocalFs, MemFs, Origin, SourceFile};
pub use span::{line_col, FileId, LineCol, Span};
pub use value::{Entry, Map, Value, ValueKind};

use parser::Session;
use std::path::Path;

/// What redacted secrets are replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Parses the config at `path` and the files it includes, read through `fs`. Variables
/// resolve only against earlier keys (no environment).
pub fn parse_file(path: &Path, fs: &dyn Fs) -> Result<Config, ConfError> {
    parse_file_with_env(path, fs, &Env::new())
}

/// [`parse_file`] with `env` standing for the server's environment.
pub fn parse_file_with_env(path: &Path, fs: &dyn Fs, env: &Env) -> Result<Config, ConfError> {
    let text = fs.read(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        included_from: None,
        source,
    })?;
    parse_str(&text, path, fs, env)
}

/// Parses `text` as if read from `path` (includes resolve relative to it, through `fs`).
pub fn parse_str(text: &str, path: &Path, fs: &dyn Fs, env: &Env) -> Result<Config, ConfError> {
    let mut session = Session::new(fs, env, true);
    let id = session.add_file(path.to_path_buf(), text.to_string(), Origin::Main);
    let root = session.parse(id)?;
    Ok(Config::new(session.files, session.includes, root))
}

#[cfg(test)]
mod tests;
