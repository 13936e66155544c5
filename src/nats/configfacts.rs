//! The node's config as the probe printed it (`CFGFILE`/`CFGL` lines), parsed here with
//! [`crate::natsconf`]: configured routes (redacted), the file that holds them, the cluster
//! port and authorization, the configured `server_name`. Nothing secret leaves this module:
//! route URLs are shown with their password replaced, errors go through `natsconf::redact`.

use crate::natsconf::{self, MemFs, Setting};
use serde::Serialize;
use std::path::Path;

/// The config files the probe printed: `(path, text)`, the main file first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturedConfig {
    pub files: Vec<(String, String)>,
    /// Included files the probe could not read.
    pub missing: Vec<String>,
}

/// What the config says, for facts and templates (secrets removed).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConfigFacts {
    /// The main config file.
    pub file: String,
    /// Every file parsed (the main file and its includes).
    pub files: Vec<String>,
    /// `cluster.routes` as parsed, credentials redacted (`nats-route://route:[REDACTED]@n2:6222`).
    pub routes: Vec<String>,
    /// Route elements whose `$VARIABLE` nothing in the config defines (the server's
    /// environment may): their names.
    pub unresolved: Vec<String>,
    /// The file holding the routes array (an included file when the cluster block is there).
    pub routes_file: Option<String>,
    /// `cluster.port` (or `cluster.listen`'s port).
    pub cluster_port: Option<u16>,
    /// `cluster.authorization` is present.
    pub cluster_authorization: bool,
    /// The routes carry credentials (`user:password@`).
    pub routes_have_credentials: bool,
    /// `server_name` as written: the name, or `$VAR` when it comes from the environment.
    pub server_name: Option<String>,
    /// The config could not be parsed (location and message, secrets redacted).
    pub error: Option<String>,
}

impl CapturedConfig {
    /// Parses the captured files. None when the probe printed no config.
    pub fn facts(&self) -> Option<ConfigFacts> {
        let (main, _) = self.files.first()?;
        let mut fs = MemFs::new();
        for (p, t) in &self.files {
            fs.insert(p.clone(), t.clone());
        }
        let mut f = ConfigFacts {
            file: main.clone(),
            files: self.files.iter().map(|(p, _)| p.clone()).collect(),
            ..Default::default()
        };
        let conf = match natsconf::parse_file(Path::new(main), &fs) {
            Ok(c) => c,
            Err(e) => {
                f.error = Some(natsconf::redact(&e.to_string()));
                return Some(f);
            }
        };
        f.server_name = conf.server_name().and_then(|s| match s {
            Setting::Known(n) => Some(n),
            Setting::Unresolved(v) => Some(format!("${v}")),
            Setting::Invalid(_) => None,
        });
        if let Some(c) = conf.cluster() {
            f.cluster_port = c.effective_port();
            f.cluster_authorization = c.authorization().is_some();
            match c.routes() {
                Some(Setting::Known(r)) => {
                    f.routes_file = Some(conf.path(r.file).to_string_lossy().into_owned());
                    for route in &r.routes {
                        match (&route.url, &route.text) {
                            (Ok(u), _) => {
                                f.routes_have_credentials |= u.userinfo.is_some();
                                f.routes.push(u.redacted());
                            }
                            (Err(_), Setting::Unresolved(v)) => f.unresolved.push(v.clone()),
                            (Err(_), _) => f.routes.push(natsconf::redact(&route.written)),
                        }
                    }
                }
                Some(Setting::Unresolved(v)) => f.unresolved.push(v),
                Some(Setting::Invalid(why)) => {
                    f.error = Some(format!("cluster.routes: {}", natsconf::redact(&why)));
                }
                None => {}
            }
        }
        Some(f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cap(files: &[(&str, &str)]) -> CapturedConfig {
        CapturedConfig {
            files: files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
            missing: vec![],
        }
    }

    #[test]
    fn classic_routes_with_credentials_are_redacted() {
        let c = cap(&[(
            "/etc/nats/n.conf",
            "server_name: n1\ncluster {\n  listen: \"10.0.0.1:6222\"\n  authorization { user: route, password: \"S3cret!\" }\n  routes: [\n    nats-route://route:S3cret!@n2:6222\n    \"nats-route://route:S3cret!@n3:6222\"\n  ]\n}\n",
        )]);
        let f = c.facts().unwrap();
        assert_eq!(f.server_name.as_deref(), Some("n1"));
        assert_eq!(f.cluster_port, Some(6222));
        assert!(f.cluster_authorization);
        assert!(f.routes_have_credentials);
        assert_eq!(
            f.routes,
            vec![
                "nats-route://route:[REDACTED]@n2:6222",
                "nats-route://route:[REDACTED]@n3:6222"
            ]
        );
        assert_eq!(f.routes_file.as_deref(), Some("/etc/nats/n.conf"));
        assert!(!format!("{f:?}").contains("S3cret"));
    }

    #[test]
    fn helm_json_with_env_server_name_and_an_include() {
        let c = cap(&[
            (
                "/etc/nats-config/nats.conf",
                "# rendered\n{\n  \"server_name\": $SERVER_NAME,\n  \"port\": 4222,\n  include 'cluster.conf'\n}\n",
            ),
            (
                "/etc/nats-config/cluster.conf",
                "\"cluster\": {\n  \"port\": 6222,\n  \"routes\": [\n    \"nats://n1:6222\",\n    $EXTRA_ROUTE\n  ]\n}\n",
            ),
        ]);
        let f = c.facts().unwrap();
        assert_eq!(f.server_name.as_deref(), Some("$SERVER_NAME"));
        assert_eq!(f.routes, vec!["nats://n1:6222"]);
        assert_eq!(f.unresolved, vec!["EXTRA_ROUTE"]);
        assert_eq!(
            f.routes_file.as_deref(),
            Some("/etc/nats-config/cluster.conf")
        );
        assert!(!f.cluster_authorization);
        assert_eq!(f.files.len(), 2);
    }

    #[test]
    fn a_parse_error_is_reported_without_secrets() {
        let c = cap(&[("/n.conf", "password: \"hunter2\"\ncluster {\n  routes: [\n")]);
        let f = c.facts().unwrap();
        let e = f.error.unwrap();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
