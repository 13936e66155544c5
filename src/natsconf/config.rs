//! A parsed config and the settings nats-rescue reads from it, each traced to file and span.

use super::route::{build_routes, Endpoint, RouteUrl};
use super::source::{Include, SourceFile};
use super::span::{FileId, Span};
use super::value::{Entry, Map, Value, ValueKind};
use std::path::Path;

/// A setting as the config gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    /// Written literally, or through a variable that resolved.
    Known(T),
    /// `$NAME` that no earlier key and no environment entry defines: the value is not known
    /// here (on the node the server's environment may define it).
    Unresolved(String),
    /// A value of the wrong kind (what was found).
    Invalid(String),
}

impl<T> Setting<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Setting::Known(t) => Some(t),
            _ => None,
        }
    }

    pub fn into_known(self) -> Option<T> {
        match self {
            Setting::Known(t) => Some(t),
            _ => None,
        }
    }
}

fn setting<T>(v: &Value, want: &str, conv: impl Fn(&Value) -> Option<T>) -> Setting<T> {
    if let Some(name) = v.unresolved_variable() {
        return Setting::Unresolved(name.to_string());
    }
    match v.resolved() {
        Some(r) => conv(r).map_or_else(
            || Setting::Invalid(format!("expected {want}, found {}", r.describe())),
            Setting::Known,
        ),
        None => Setting::Invalid(format!("expected {want}")),
    }
}

fn string_setting(v: &Value) -> Setting<String> {
    setting(v, "a string", |v| v.as_str().map(str::to_string))
}

fn port_setting(v: &Value) -> Setting<u16> {
    setting(v, "a port (0-65535)", |v| {
        v.as_i64().and_then(|n| u16::try_from(n).ok())
    })
}

/// `listen`/`http`: a port alone or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: Option<String>,
    pub port: u16,
}

fn host_port_setting(v: &Value) -> Setting<HostPort> {
    setting(v, "a port or host:port", |v| match &v.kind {
        ValueKind::Integer(n) => u16::try_from(*n)
            .ok()
            .map(|port| HostPort { host: None, port }),
        ValueKind::String { value, .. } => {
            let ep = Endpoint::parse(value).ok()?;
            Some(HostPort {
                host: Some(ep.host),
                port: ep.port,
            })
        }
        _ => None,
    })
}

/// Where the monitoring endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitoring {
    pub host: Option<String>,
    pub port: u16,
    /// `https`/`https_port` rather than `http`/`http_port`/`monitor_port`.
    pub tls: bool,
}

/// An entry of `accounts { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// User names (or nkeys) of its `users` list, in order.
    pub users: Vec<String>,
}

impl Account {
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }
}

/// A whole config: the main file, its includes, and the merged key tree.
#[derive(Debug, Clone)]
pub struct Config {
    files: Vec<SourceFile>,
    includes: Vec<Include>,
    root: Map,
}

impl Config {
    pub(crate) fn new(files: Vec<SourceFile>, includes: Vec<Include>, root: Map) -> Config {
        Config {
            files,
            includes,
            root,
        }
    }

    /// Every text parsed: the main file first, then included files and environment values.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// # Panics
    /// If `id` does not come from this config.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }

    pub fn includes(&self) -> &[Include] {
        &self.includes
    }

    /// The top-level keys, includes merged in.
    pub fn root(&self) -> &Map {
        &self.root
    }

    /// A top-level value by any of its names, ignoring ASCII case.
    pub fn get(&self, keys: &[&str]) -> Option<&Value> {
        self.root.get_ci(keys)
    }

    /// `server_name` (often `$SERVER_NAME`/`$POD_NAME` in the Helm chart).
    pub fn server_name(&self) -> Option<Setting<String>> {
        self.get(&["server_name"]).map(string_setting)
    }

    /// `port` (client port).
    pub fn port(&self) -> Option<Setting<u16>> {
        self.get(&["port"]).map(port_setting)
    }

    /// `listen` (client `host:port` or port).
    pub fn listen(&self) -> Option<Setting<HostPort>> {
        self.get(&["listen"]).map(host_port_setting)
    }

    /// The client port from `port`, else from `listen`.
    pub fn client_port(&self) -> Option<u16> {
        self.port()
            .and_then(Setting::into_known)
            .or_else(|| self.listen()?.into_known().map(|hp| hp.port))
    }

    /// The `cluster { … }` block, when it is a block.
    pub fn cluster(&self) -> Option<Cluster<'_>> {
        let entry = self.root.entry_ci(&["cluster"])?;
        let map = entry.value.as_map()?;
        Some(Cluster {
            config: self,
            entry,
            map,
        })
    }

    /// `cluster.routes`, shorthand for `cluster()?.routes()`.
    pub fn routes(&self) -> Option<Setting<Routes>> {
        self.cluster()?.routes()
    }

    /// Whether `jetstream` is on: a block (unless `enabled: false`), a boolean, or
    /// `enabled`/`disabled`.
    pub fn jetstream_enabled(&self) -> Option<bool> {
        let v = self.get(&["jetstream"])?.resolved()?;
        match &v.kind {
            ValueKind::Bool(b) => Some(*b),
            ValueKind::String { value, .. } => match value.to_ascii_lowercase().as_str() {
                "enable" | "enabled" | "true" => Some(true),
                "disable" | "disabled" | "false" => Some(false),
                _ => None,
            },
            ValueKind::Map(m) => Some(
                m.get_ci(&["enabled"])
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            ),
            _ => None,
        }
    }

    /// `jetstream { store_dir }` (also `store`/`storedir`), else top-level `store_dir`.
    pub fn store_dir(&self) -> Option<Setting<String>> {
        let in_block = self
            .get(&["jetstream"])
            .and_then(Value::as_map)
            .and_then(|m| m.get_ci(&["store_dir", "store", "storedir"]));
        in_block
            .or_else(|| self.get(&["store_dir", "storedir"]))
            .map(string_setting)
    }

    /// `http` (`host:port` or port).
    pub fn http(&self) -> Option<Setting<HostPort>> {
        self.get(&["http"]).map(host_port_setting)
    }

    /// `https` (`host:port` or port).
    pub fn https(&self) -> Option<Setting<HostPort>> {
        self.get(&["https"]).map(host_port_setting)
    }

    /// `http_port` or its alias `monitor_port`.
    pub fn http_port(&self) -> Option<Setting<u16>> {
        self.get(&["http_port", "monitor_port"]).map(port_setting)
    }

    pub fn https_port(&self) -> Option<Setting<u16>> {
        self.get(&["https_port"]).map(port_setting)
    }

    /// The monitoring endpoint from whichever of `http_port`, `monitor_port`, `http`,
    /// `https_port`, `https` is set (in that order).
    pub fn monitoring(&self) -> Option<Monitoring> {
        let host = |s: Option<Setting<HostPort>>| s.and_then(Setting::into_known);
        let http = host(self.http());
        let https = host(self.https());
        if let Some(port) = self.http_port().and_then(Setting::into_known) {
            let host = http.and_then(|h| h.host);
            return Some(Monitoring {
                host,
                port,
                tls: false,
            });
        }
        if let Some(hp) = http {
            return Some(Monitoring {
                host: hp.host,
                port: hp.port,
                tls: false,
            });
        }
        if let Some(port) = self.https_port().and_then(Setting::into_known) {
            let host = https.and_then(|h| h.host);
            return Some(Monitoring {
                host,
                port,
                tls: true,
            });
        }
        https.map(|hp| Monitoring {
            host: hp.host,
            port: hp.port,
            tls: true,
        })
    }

    /// `system_account` (alias `system`).
    pub fn system_account(&self) -> Option<Setting<String>> {
        self.get(&["system_account", "system"]).map(string_setting)
    }

    /// The accounts of `accounts { NAME: { users: [...] } }`, in order.
    pub fn accounts(&self) -> Vec<Account> {
        let Some(accounts) = self.get(&["accounts"]).and_then(Value::as_map) else {
            return Vec::new();
        };
        accounts
            .entries
            .iter()
            .map(|e| Account {
                name: e.key.clone(),
                users: account_users(&e.value),
            })
            .collect()
    }
}

fn account_users(account: &Value) -> Vec<String> {
    let users = account
        .as_map()
        .and_then(|m| m.get_ci(&["users"]))
        .and_then(Value::as_array)
        .unwrap_or_default();
    users
        .iter()
        .filter_map(|u| {
            let m = u.as_map()?;
            let name = m
                .get_ci(&["user", "username"])
                .or_else(|| m.get_ci(&["nkey"]))?;
            Some(
                name.as_str()
                    .map_or_else(|| name.describe(), str::to_string),
            )
        })
        .collect()
}

/// The `cluster` block.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'c> {
    config: &'c Config,
    entry: &'c Entry,
    map: &'c Map,
}

/// `cluster { authorization { … } }`: the credentials other servers' routes must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    pub user: Option<Setting<String>>,
    pub password: Option<Setting<String>>,
    pub token: Option<Setting<String>>,
    /// Seconds.
    pub timeout: Option<Setting<f64>>,
}

/// `cluster.routes`: the array and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Routes {
    /// The file holding the `[ … ]` (an included file when the cluster block comes from one).
    pub file: FileId,
    /// The `[ … ]` including the brackets.
    pub span: Span,
    /// `routes: $NAME`: the array is that variable's definition.
    pub via_variable: Option<String>,
    pub routes: Vec<Route>,
}

impl Routes {
    /// The routes whose URL could be read.
    pub fn urls(&self) -> Vec<RouteUrl> {
        self.routes
            .iter()
            .filter_map(|r| r.url.clone().ok())
            .collect()
    }
}

/// One element of `routes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The element as written, quotes included (`"nats://a:6222"`, `nats://a:6222`, `$R1`).
    pub written: String,
    /// The string the server reads (quotes and escapes removed, variables resolved).
    pub text: Setting<String>,
    /// The parsed URL, or why there is none.
    pub url: Result<RouteUrl, String>,
    pub span: Span,
    pub file: FileId,
}

impl<'c> Cluster<'c> {
    /// The `cluster` key's entry (its span and file).
    pub fn entry(&self) -> &'c Entry {
        self.entry
    }

    pub fn map(&self) -> &'c Map {
        self.map
    }

    pub fn name(&self) -> Option<Setting<String>> {
        self.map.get_ci(&["name"]).map(string_setting)
    }

    pub fn port(&self) -> Option<Setting<u16>> {
        self.map.get_ci(&["port"]).map(port_setting)
    }

    pub fn listen(&self) -> Option<Setting<HostPort>> {
        self.map.get_ci(&["listen"]).map(host_port_setting)
    }

    /// The cluster port from `port`, else from `listen`.
    pub fn effective_port(&self) -> Option<u16> {
        self.port()
            .and_then(Setting::into_known)
            .or_else(|| self.listen()?.into_known().map(|hp| hp.port))
    }

    pub fn authorization(&self) -> Option<Authorization> {
        let m = self.map.get_ci(&["authorization"])?.as_map()?;
        Some(Authorization {
            user: m.get_ci(&["user", "username"]).map(string_setting),
            password: m.get_ci(&["password", "pass"]).map(string_setting),
            token: m.get_ci(&["token"]).map(string_setting),
            timeout: m.get_ci(&["timeout"]).map(|v| {
                setting(v, "seconds", |v| match v.kind {
                    ValueKind::Float(f) => Some(f),
                    ValueKind::Integer(n) => Some(n as f64),
                    _ => None,
                })
            }),
        })
    }

    pub fn routes(&self) -> Option<Setting<Routes>> {
        let v = self.map.get_ci(&["routes"])?;
        if let Some(name) = v.unresolved_variable() {
            return Some(Setting::Unresolved(name.to_string()));
        }
        let array = v.resolved()?;
        let ValueKind::Array(items) = &array.kind else {
            return Some(Setting::Invalid(format!(
                "expected an array of URLs, found {}",
                array.describe()
            )));
        };
        let via_variable = match &v.kind {
            ValueKind::Variable { name, .. } => Some(name.clone()),
            _ => None,
        };
        let routes = items.iter().map(|item| self.route(item)).collect();
        Some(Setting::Known(Routes {
            file: array.file,
            span: array.span,
            via_variable,
            routes,
        }))
    }

    fn route(&self, item: &Value) -> Route {
        let text = string_setting(item);
        let url = match &text {
            Setting::Known(s) => RouteUrl::parse(s).map_err(|e| e.to_string()),
            Setting::Unresolved(name) => Err(format!("${name} is not defined")),
            Setting::Invalid(why) => Err(why.clone()),
        };
        let source = &self.config.file(item.file).text;
        Route {
            written: item.span.slice(source).to_string(),
            text,
            url,
            span: item.span,
            file: item.file,
        }
    }

    /// Route URLs for `desired` that keep the current scheme and credentials (see
    /// [`build_routes`]); with no current route, the cluster `authorization` user and password.
    pub fn build_routes(&self, desired: &[Endpoint]) -> Vec<String> {
        let current = match self.routes() {
            Some(Setting::Known(r)) => r.urls(),
            _ => Vec::new(),
        };
        let auth = self.authorization();
        let user = auth
            .as_ref()
            .and_then(|a| a.user.as_ref()?.known().cloned());
        let pass = auth
            .as_ref()
            .and_then(|a| a.password.as_ref()?.known().cloned());
        let fallback = user.as_deref().zip(pass.as_deref());
        build_routes(desired, &current, fallback)
    }
}

impl Config {
    /// The path of file `id`.
    pub fn path(&self, id: FileId) -> &Path {
        &self.file(id).path
    }
}
