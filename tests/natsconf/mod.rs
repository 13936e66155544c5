//! The config parser on fixtures in every shape operators write (tests/fixtures/natsconf/):
//! parse, check what a user would check, rewrite the routes, prove that only the routes array
//! changed, re-parse, and have the real nats-server 2.9.10 and 2.15.1 agree (`-t`) that the
//! fixture and the rewritten result are valid configs.

use crate::support::lab::{legacy_server, modern_server};
use nats_rescue::natsconf::{
    parse_file, parse_file_with_env, redact, ConfError, Config, Endpoint, Env, LocalFs, Setting,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/natsconf")
}

fn known<T: std::fmt::Debug>(s: Option<Setting<T>>) -> T {
    match s {
        Some(Setting::Known(t)) => t,
        other => panic!("expected a known value, got {other:?}"),
    }
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `nats-server -t -c nats.conf` in `dir` with only `env` in its environment.
fn server_verdict(bin: &Path, dir: &Path, env: &Env) -> Result<(), String> {
    let out = Command::new(bin)
        .args(["-t", "-c", "nats.conf"])
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .output()
        .expect("run nats-server -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("is valid") {
        Ok(())
    } else {
        Err(text)
    }
}

fn assert_servers_accept(dir: &Path, env: &Env, what: &str) {
    for bin in [legacy_server(), modern_server()] {
        if let Err(out) = server_verdict(&bin, dir, env) {
            panic!(
                "{} rejects {what} in {}:\n{out}",
                bin.display(),
                dir.display()
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn route_texts(cfg: &Config) -> Vec<String> {
    known(cfg.routes())
        .routes
        .iter()
        .map(|r| known(Some(r.text.clone())))
        .collect()
}

/// One fixture directory (`nats.conf` plus what it includes).
struct Case {
    dir: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// The settings a user checks; must hold before and after the rewrite.
    check: fn(&Config),
    routes_before: &'static [&'static str],
    /// The cluster the routes should describe after the rewrite (host:port).
    desired: &'static [&'static str],
    routes_after: &'static [&'static str],
}

impl Case {
    fn run(&self) {
        let env = env(self.env);
        let src = fixtures().join(self.dir);
        assert_servers_accept(&src, &env, "the fixture");

        let cfg = parse_file_with_env(&src.join("nats.conf"), &LocalFs, &env)
            .unwrap_or_else(|e| panic!("{e}"));
        (self.check)(&cfg);
        assert_eq!(
            route_texts(&cfg),
            self.routes_before,
            "routes of {}",
            self.dir
        );

        let routes = known(cfg.routes());
        let desired: Vec<Endpoint> = self
            .desired
            .iter()
            .map(|d| Endpoint::parse(d).unwrap())
            .collect();
        let new_routes = cfg.cluster().unwrap().build_routes(&desired);
        assert_eq!(
            new_routes, self.routes_after,
            "built routes of {}",
            self.dir
        );

        let old = cfg.file(routes.file).text.to_string();
        let new = nats_rescue::natsconf::rewrite_routes(&old, &cfg, &new_routes).unwrap();
        // Every byte outside the routes array is the same.
        let tail = old.len() - routes.span.end;
        assert_eq!(
            new[..routes.span.start],
            old[..routes.span.start],
            "{}: text before the routes",
            self.dir
        );
        assert_eq!(
            new[new.len() - tail..],
            old[routes.span.end..],
            "{}: text after the routes",
            self.dir
        );
        assert_ne!(new, old, "{}: the rewrite changed nothing", self.dir);

        // Write it where it lives (an included file, maybe) in a copy, re-parse, re-validate.
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join(self.dir);
        copy_dir(&src, &copy);
        let rel = cfg.path(routes.file).strip_prefix(&src).unwrap();
        std::fs::write(copy.join(rel), &new).unwrap();
        let again = parse_file_with_env(&copy.join("nats.conf"), &LocalFs, &env)
            .unwrap_or_else(|e| panic!("{e}\n{new}"));
        assert_eq!(
            route_texts(&again),
            self.routes_after,
            "{}: re-parsed routes\n{new}",
            self.dir
        );
        assert_eq!(again.path(known(again.routes()).file), copy.join(rel));
        (self.check)(&again);
        assert_servers_accept(&copy, &env, &format!("the rewritten config:\n{new}"));
    }
}

#[test]
fn classic_0x_chart_unquoted_one_line_routes() {
    Case {
        dir: "classic-0x",
        env: &[
            ("POD_NAME", "nats-0"),
            ("CLUSTER_ADVERTISE", "nats-0.nats.default.svc"),
        ],
        check: |c| {
            assert_eq!(known(c.server_name()), "nats-0");
            assert_eq!(known(c.port()), 4222);
            assert_eq!(c.monitoring().map(|m| m.port), Some(8222));
            assert_eq!(known(c.store_dir()), "/data");
            let cl = c.cluster().unwrap();
            assert_eq!(
                (known(cl.name()), known(cl.port())),
                ("nats".to_string(), 6222)
            );
            let js = c.get(&["jetstream"]).and_then(|v| v.as_map()).unwrap();
            assert_eq!(
                js.get_ci(&["max_file"]).and_then(|v| v.as_i64()),
                Some(10 << 30)
            );
        },
        routes_before: &[
            "nats://nats-0.nats.default.svc:6222",
            "nats://nats-1.nats.default.svc:6222",
            "nats://nats-2.nats.default.svc:6222",
        ],
        desired: &[
            "nats-0.nats.default.svc:6222",
            "nats-1.nats.default.svc:6222",
            "nats-3.nats.default.svc:6222",
        ],
        routes_after: &[
            "nats://nats-0.nats.default.svc:6222",
            "nats://nats-1.nats.default.svc:6222",
            "nats://nats-3.nats.default.svc:6222",
        ],
    }
    .run();
}

#[test]
fn classic_0x_rewrite_keeps_the_comma_joined_line() {
    let cfg = parse_file_with_env(
        &fixtures().join("classic-0x/nats.conf"),
        &LocalFs,
        &env(&[("POD_NAME", "nats-0"), ("CLUSTER_ADVERTISE", "x")]),
    )
    .unwrap();
    let new = cfg
        .rewrite_routes(&["nats://a:6222".into(), "nats://b:6222".into()])
        .unwrap();
    assert!(
        new.text
            .contains("  routes = [\n    nats://a:6222,nats://b:6222,\n    \n  ]\n"),
        "{}",
        new.text
    );
}

#[test]
fn colon_style_with_accounts() {
    Case {
        dir: "colon",
        env: &[],
        check: |c| {
            assert_eq!(known(c.server_name()), "n1");
            let listen = known(c.listen());
            assert_eq!(
                (listen.host.as_deref(), listen.port),
                (Some("0.0.0.0"), 4222)
            );
            assert_eq!(c.client_port(), Some(4222));
            assert_eq!(known(c.http_port()), 8222);
            assert_eq!(known(c.system_account()), "SYS");
            let accounts: Vec<(String, Vec<String>)> = c
                .accounts()
                .into_iter()
                .map(|a| (a.name, a.users))
                .collect();
            assert_eq!(
                accounts,
                [
                    ("SYS".to_string(), vec!["sys".to_string()]),
                    (
                        "APP".to_string(),
                        vec!["app".to_string(), "reporting".to_string()]
                    ),
                    ("AUDIT".to_string(), vec![]),
                ]
            );
            assert_eq!(known(c.store_dir()), "/var/lib/nats/js");
            let cl = c.cluster().unwrap();
            assert_eq!(cl.effective_port(), Some(6222));
            assert_eq!(known(cl.listen()).host.as_deref(), Some("0.0.0.0"));
        },
        routes_before: &[
            "nats-route://n1.example.internal:6222",
            "nats-route://n2.example.internal:6222",
            "nats-route://n3.example.internal:6222",
        ],
        desired: &["n1.example.internal:6222", "n4.example.internal:6222"],
        routes_after: &[
            "nats-route://n1.example.internal:6222",
            "nats-route://n4.example.internal:6222",
        ],
    }
    .run();
}

#[test]
fn space_style_with_route_credentials() {
    Case {
        dir: "space",
        env: &[],
        check: |c| {
            assert_eq!(known(c.server_name()), "n2");
            assert_eq!(known(c.port()), 4222);
            assert_eq!(c.monitoring().map(|m| m.port), Some(8222));
            assert_eq!(known(c.store_dir()), "/var/lib/nats");
            let auth = c.cluster().unwrap().authorization().unwrap();
            assert_eq!(known(auth.user), "ruser");
            assert_eq!(known(auth.password), "s3cr3t");
            assert_eq!(known(auth.timeout), 2.0);
        },
        routes_before: &[
            "nats-route://ruser:s3cr3t@n1:6222",
            "nats-route://ruser:s3cr3t@n2:6222",
            "nats-route://ruser:s3cr3t@n3:6222",
        ],
        desired: &["n2:6222", "n3:6222", "n5:6222"],
        routes_after: &[
            "nats-route://ruser:s3cr3t@n2:6222",
            "nats-route://ruser:s3cr3t@n3:6222",
            "nats-route://ruser:s3cr3t@n5:6222",
        ],
    }
    .run();
}

#[test]
fn one_line_blocks() {
    Case {
        dir: "one-line",
        env: &[],
        check: |c| {
            assert_eq!(known(c.server_name()), "n3");
            let http = known(c.http());
            assert_eq!((http.host.as_deref(), http.port), (Some("127.0.0.1"), 8222));
            let cl = c.cluster().unwrap();
            assert_eq!(known(cl.name()), "c1");
            let auth = cl.authorization().unwrap();
            assert_eq!(
                (known(auth.user), known(auth.password)),
                ("ruser".to_string(), "pw".to_string())
            );
            assert_eq!(known(auth.timeout), 0.5);
        },
        routes_before: &[
            "nats-route://ruser:pw@n1:6222",
            "nats-route://ruser:pw@n2:6222",
            "nats-route://ruser:pw@n3:6222",
        ],
        desired: &["n1:6222", "n3:6222"],
        routes_after: &[
            "nats-route://ruser:pw@n1:6222",
            "nats-route://ruser:pw@n3:6222",
        ],
    }
    .run();
}

#[test]
fn slash_comments() {
    Case {
        dir: "slash-comments",
        env: &[],
        check: |c| {
            assert_eq!(known(c.server_name()), "n1");
            assert_eq!(known(c.port()), 4222);
            assert_eq!(known(c.http_port()), 8222);
            assert_eq!(known(c.cluster().unwrap().port()), 6222);
        },
        // `// nats://old:6222,` is a comment, not a route
        routes_before: &["nats://n1:6222", "nats://n2:6222", "nats://n3:6222"],
        desired: &["n1:6222", "n2:6222", "n4:6222"],
        routes_after: &["nats://n1:6222", "nats://n2:6222", "nats://n4:6222"],
    }
    .run();
}

#[test]
fn helm_chart_v1_json_with_self_route_and_env_server_name() {
    Case {
        dir: "chart-v1",
        env: &[("SERVER_NAME", "nats-1")],
        check: |c| {
            assert_eq!(known(c.server_name()), "nats-1");
            assert_eq!(known(c.port()), 4222);
            assert_eq!(known(c.http_port()), 8222);
            assert_eq!(known(c.store_dir()), "/data");
            assert_eq!(c.jetstream_enabled(), Some(true));
            let cl = c.cluster().unwrap();
            assert_eq!(
                (known(cl.name()), known(cl.port())),
                ("nats".to_string(), 6222)
            );
            // the chart lists every server, this one included
            let me = Endpoint::new("nats-1.nats-headless", 6222);
            assert!(known(cl.routes()).urls().iter().any(|u| u.points_at(&me)));
        },
        routes_before: &[
            "nats://nats-0.nats-headless:6222",
            "nats://nats-1.nats-headless:6222",
            "nats://nats-2.nats-headless:6222",
        ],
        desired: &[
            "nats-0.nats-headless:6222",
            "nats-1.nats-headless:6222",
            "nats-2.nats-headless:6222",
            "nats-3.nats-headless:6222",
        ],
        routes_after: &[
            "nats://nats-0.nats-headless:6222",
            "nats://nats-1.nats-headless:6222",
            "nats://nats-2.nats-headless:6222",
            "nats://nats-3.nats-headless:6222",
        ],
    }
    .run();
}

#[test]
fn helm_chart_v1_json_rewrite_stays_json() {
    let cfg = parse_file(&fixtures().join("chart-v1/nats.conf"), &LocalFs).unwrap();
    // Without the pod's environment the server name is reported, not guessed.
    assert_eq!(
        cfg.server_name(),
        Some(Setting::Unresolved("SERVER_NAME".into()))
    );
    let new = cfg
        .rewrite_routes(&[
            "nats://nats-0.nats-headless:6222".into(),
            "nats://nats-9.nats-headless:6222".into(),
        ])
        .unwrap();
    assert!(
        new.text.contains(
            "    \"routes\": [\n      \"nats://nats-0.nats-headless:6222\",\n      \"nats://nats-9.nats-headless:6222\"\n    ]\n  },\n"
        ),
        "{}",
        new.text
    );
    let json_without_var = new.text.replace("$SERVER_NAME", "\"x\"");
    let v: serde_json::Value =
        serde_json::from_str(&json_without_var.replace("10Gi", "1")).unwrap();
    assert_eq!(
        v["cluster"]["routes"][1],
        "nats://nats-9.nats-headless:6222"
    );
}

#[test]
fn include_holding_the_cluster_block() {
    Case {
        dir: "include",
        env: &[("SERVER_NAME", "n1")],
        check: |c| {
            assert_eq!(known(c.server_name()), "n1");
            assert_eq!(known(c.store_dir()), "/var/lib/nats");
            let cl = c.cluster().unwrap();
            assert_eq!(known(cl.name()), "prod");
            // included from conf.d/cluster.conf, resolved relative to conf.d/
            let auth = cl.authorization().unwrap();
            assert_eq!(
                (known(auth.user), known(auth.password)),
                ("ruser".to_string(), "pw".to_string())
            );
            let routes = known(cl.routes());
            assert!(
                c.path(routes.file).ends_with("include/conf.d/cluster.conf"),
                "{}",
                c.path(routes.file).display()
            );
            assert_eq!(c.includes().len(), 2);
        },
        routes_before: &[
            "nats-route://ruser:pw@n1:6222",
            "nats-route://ruser:pw@n2:6222",
        ],
        desired: &["n1:6222", "n2:6222", "n3:6222"],
        routes_after: &[
            "nats-route://ruser:pw@n1:6222",
            "nats-route://ruser:pw@n2:6222",
            "nats-route://ruser:pw@n3:6222",
        ],
    }
    .run();
}

#[test]
fn include_rewrite_targets_the_included_file_only() {
    let cfg = parse_file(&fixtures().join("include/nats.conf"), &LocalFs).unwrap();
    let main = cfg
        .file(nats_rescue::natsconf::FileId::MAIN)
        .text
        .to_string();
    let routes = known(cfg.routes());
    assert_ne!(routes.file, nats_rescue::natsconf::FileId::MAIN);
    // The main file's text is not where the routes are: refused, not mangled.
    let e =
        nats_rescue::natsconf::rewrite_routes(&main, &cfg, &["nats://x:6222".into()]).unwrap_err();
    assert!(e.to_string().contains("conf.d/cluster.conf"), "{e}");
}

#[test]
fn variables_from_earlier_keys_blocks_and_env() {
    Case {
        dir: "variables",
        env: &[("SERVER_NAME", "n7"), ("CLUSTER_NAME", "prod")],
        check: |c| {
            assert_eq!(known(c.port()), 4222);
            assert_eq!(known(c.server_name()), "n7");
            let cl = c.cluster().unwrap();
            assert_eq!(known(cl.name()), "prod");
            assert_eq!(known(cl.port()), 6222);
        },
        routes_before: &[
            "nats://seed.example.internal:6222",
            "nats://n2.example.internal:6222",
        ],
        desired: &["seed.example.internal:6222", "n3.example.internal:6222"],
        routes_after: &[
            "nats://seed.example.internal:6222",
            "nats://n3.example.internal:6222",
        ],
    }
    .run();
    // The route given by `$SEED_ROUTE` stays written as `$SEED_ROUTE`.
    let cfg = parse_file(&fixtures().join("variables/nats.conf"), &LocalFs).unwrap();
    let new = cfg
        .rewrite_routes(&[
            "nats://seed.example.internal:6222".into(),
            "nats://n3:6222".into(),
        ])
        .unwrap();
    assert!(
        new.text.contains("    $SEED_ROUTE\n    nats://n3:6222\n"),
        "{}",
        new.text
    );
    // Dropping it would orphan its definition, which the server rejects: refused.
    let e = cfg.rewrite_routes(&["nats://n3:6222".into()]).unwrap_err();
    assert!(e.to_string().contains("$SEED_ROUTE"), "{e}");
}

#[test]
fn route_credentials_are_kept_and_redacted() {
    Case {
        dir: "route-credentials",
        env: &[],
        check: |c| {
            let cl = c.cluster().unwrap();
            let auth = cl.authorization().unwrap();
            assert_eq!(
                (known(auth.user), known(auth.password)),
                ("ruser".to_string(), "T0pS3cret".to_string())
            );
            for url in known(cl.routes()).urls() {
                assert_eq!(url.scheme.as_deref(), Some("nats-route"));
                assert_eq!(
                    (url.user.as_deref(), url.password.as_deref()),
                    (Some("ruser"), Some("T0pS3cret"))
                );
            }
        },
        routes_before: &[
            "nats-route://ruser:T0pS3cret@n1:6222",
            "nats-route://ruser:T0pS3cret@n2:6222",
            "nats-route://ruser:T0pS3cret@n3:6222",
        ],
        desired: &["n1:6222", "n2:6222", "n4:6222"],
        routes_after: &[
            "nats-route://ruser:T0pS3cret@n1:6222",
            "nats-route://ruser:T0pS3cret@n2:6222",
            "nats-route://ruser:T0pS3cret@n4:6222",
        ],
    }
    .run();
}

#[test]
fn tls_routes() {
    Case {
        dir: "tls",
        env: &[],
        check: |c| {
            let cl = c.cluster().unwrap();
            let tls = cl.map().get_ci(&["tls"]).and_then(|v| v.as_map()).unwrap();
            assert_eq!(
                tls.get_ci(&["cert_file"]).and_then(|v| v.as_str()),
                Some("certs/route-cert.pem")
            );
            for url in known(cl.routes()).urls() {
                assert_eq!(url.scheme.as_deref(), Some("tls"));
            }
        },
        routes_before: &[
            "tls://n1.example.internal:6222",
            "tls://n2.example.internal:6222",
        ],
        desired: &["n2.example.internal:6222", "n3.example.internal:6222"],
        routes_after: &[
            "tls://n2.example.internal:6222",
            "tls://n3.example.internal:6222",
        ],
    }
    .run();
    // single quotes and the trailing comma survive
    let cfg = parse_file(&fixtures().join("tls/nats.conf"), &LocalFs).unwrap();
    let new = cfg
        .rewrite_routes(&["tls://n3.example.internal:6222".into()])
        .unwrap();
    assert!(
        new.text
            .contains("  routes: [\n    'tls://n3.example.internal:6222',\n  ]\n"),
        "{}",
        new.text
    );
}

/// Every fixture, redacted: no secret left, the same keys and routes (hosts) still parse.
#[test]
fn redacted_fixtures_keep_their_shape_and_lose_their_secrets() {
    let secrets = [
        "T0pS3cret",
        "s3cr3t",
        "sys-secret",
        "app-secret",
        "rep-secret",
        ":pw@",
        "password: pw",
    ];
    for dir in [
        "classic-0x",
        "colon",
        "space",
        "one-line",
        "slash-comments",
        "chart-v1",
        "variables",
        "route-credentials",
        "tls",
    ] {
        let path = fixtures().join(dir).join("nats.conf");
        let text = std::fs::read_to_string(&path).unwrap();
        let out = redact(&text);
        for s in secrets {
            assert!(!out.contains(s), "{dir}: {s:?} left in\n{out}");
        }
        let before = parse_file(&path, &LocalFs).unwrap();
        let fs = nats_rescue::natsconf::MemFs::new().with(&path, out.clone());
        let after = parse_file(&path, &fs)
            .unwrap_or_else(|e| panic!("{dir}: redacted text does not parse: {e}\n{out}"));
        let keys = |c: &Config| {
            c.root()
                .entries
                .iter()
                .map(|e| e.key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&before), keys(&after), "{dir}");
        let hosts = |c: &Config| {
            known(c.routes())
                .urls()
                .iter()
                .map(|u| (u.host.clone(), u.port))
                .collect::<Vec<_>>()
        };
        assert_eq!(hosts(&before), hosts(&after), "{dir}");
    }
}

/// Broken configs: our error names file, line and column; both servers refuse them too.
#[test]
fn invalid_fixtures_are_rejected_with_positions() {
    let cases = [
        (
            "unclosed-block.conf",
            4,
            1,
            "'{' opened at 1:9 is never closed",
        ),
        (
            "missing-separator.conf",
            3,
            28,
            "expected ',', a new line or ']'",
        ),
        ("unterminated-string.conf", 2, 14, "unterminated string"),
        ("bad-escape.conf", 2, 16, "invalid escape 'q'"),
    ];
    let dir = fixtures().join("invalid");
    for (file, line, col, msg) in cases {
        let path = dir.join(file);
        let e: ConfError = parse_file(&path, &LocalFs).unwrap_err();
        let at = e.location().unwrap();
        assert_eq!(
            (at.path.as_path(), at.line, at.col),
            (path.as_path(), line, col),
            "{e}"
        );
        assert!(e.to_string().contains(msg), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(&path, tmp.path().join("nats.conf")).unwrap();
        for bin in [legacy_server(), modern_server()] {
            assert!(
                server_verdict(&bin, tmp.path(), &Env::new()).is_err(),
                "{} accepts {file}",
                bin.display()
            );
        }
    }
}

mod round_trip;
