//! Parser behaviour on small texts (fixture files are exercised by `tests/natsconf.rs`).

use super::*;
use std::path::PathBuf;

fn parse(text: &str) -> Config {
    parse_with(text, &Env::new())
}

fn parse_with(text: &str, env: &Env) -> Config {
    match parse_str(text, Path::new("/etc/nats/nats.conf"), &MemFs::new(), env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn parse_err(text: &str) -> ConfError {
    match parse_str(
        text,
        Path::new("/etc/nats/nats.conf"),
        &MemFs::new(),
        &Env::new(),
    ) {
        Ok(c) => panic!("parsed: {:?}", c.root()),
        Err(e) => e,
    }
}

fn known<T: Clone + std::fmt::Debug>(s: Option<Setting<T>>) -> T {
    match s {
        Some(Setting::Known(t)) => t,
        other => panic!("not known: {other:?}"),
    }
}

#[test]
fn three_separators_and_three_terminators_read_the_same() {
    for text in [
        "port: 4222\nserver_name: n1\n",
        "port = 4222; server_name = n1",
        "port 4222, server_name n1",
        "  port   :   4222   # client\n// name\nserver_name\t'n1'",
        "{\"port\": 4222, \"server_name\": \"n1\"}",
    ] {
        let c = parse(text);
        assert_eq!(known(c.port()), 4222, "{text}");
        assert_eq!(known(c.server_name()), "n1", "{text}");
    }
}

#[test]
fn blocks_may_follow_their_key_on_the_next_line_or_without_separator() {
    let c = parse("cluster\n{\n  port: 6222\n}\nauthorization { user: a, password: b }\n");
    assert_eq!(c.cluster().and_then(|c| c.effective_port()), Some(6222));
    let auth = c
        .root()
        .get_ci(&["authorization"])
        .and_then(Value::as_map)
        .unwrap();
    assert_eq!(
        auth.get_ci(&["password"]).and_then(Value::as_str),
        Some("b")
    );
}

#[test]
fn spans_cover_values_and_keys() {
    let text = "cluster { routes: [ \"nats://a:6222\", nats://b:6222 ] }";
    let c = parse(text);
    let routes = known(c.routes());
    assert_eq!(
        routes.span.slice(text),
        "[ \"nats://a:6222\", nats://b:6222 ]"
    );
    assert_eq!(routes.routes[0].written, "\"nats://a:6222\"");
    assert_eq!(routes.routes[1].written, "nats://b:6222");
    let cluster = c.cluster().unwrap();
    assert_eq!(cluster.entry().key_span.slice(text), "cluster");
}

#[test]
fn variables_resolve_from_earlier_keys_enclosing_blocks_then_env() {
    let env: Env = [
        ("SERVER_NAME".to_string(), "nats-1".to_string()),
        ("CPORT".to_string(), "6333".to_string()),
    ]
    .into();
    let text = "\
PORT = 4222
port: $PORT
server_name: $SERVER_NAME
cluster {
  RPASS: 'pw'
  port: $CPORT
  authorization { user: r, password: $RPASS }
  name: $NOT_DEFINED
}
";
    let c = parse_with(text, &env);
    assert_eq!(known(c.port()), 4222);
    assert_eq!(known(c.server_name()), "nats-1");
    let cl = c.cluster().unwrap();
    // the environment value is parsed as a config value: an integer here
    assert_eq!(known(cl.port()), 6333);
    assert_eq!(known(cl.authorization().unwrap().password), "pw");
    assert_eq!(cl.name(), Some(Setting::Unresolved("NOT_DEFINED".into())));
    // without the environment, the names stay unresolved: never guessed
    let c = parse(text);
    assert_eq!(
        c.server_name(),
        Some(Setting::Unresolved("SERVER_NAME".into()))
    );
}

#[test]
fn a_variable_sees_only_what_was_defined_before_it() {
    let c = parse("port: $P\nP = 1\n");
    assert_eq!(c.port(), Some(Setting::Unresolved("P".into())));
}

#[test]
fn env_variable_cycles_are_reported() {
    let env: Env = [
        ("A".to_string(), "$B".to_string()),
        ("B".to_string(), "$A".to_string()),
    ]
    .into();
    let e = parse_str("port: $A", Path::new("x.conf"), &MemFs::new(), &env).unwrap_err();
    assert!(matches!(e, ConfError::VariableCycle { .. }), "{e}");
}

#[test]
fn includes_splice_keys_and_keep_their_file() {
    let fs = MemFs::new()
        .with(
            "/etc/nats/nats.conf",
            "port: 4222\ncluster {\n  port: 6222\n  include ./routes.conf\n}\n",
        )
        .with("/etc/nats/routes.conf", "routes = [\n  nats://n2:6222\n]\n");
    let c = parse_file(Path::new("/etc/nats/nats.conf"), &fs).unwrap();
    let routes = known(c.routes());
    assert_eq!(c.path(routes.file), Path::new("/etc/nats/routes.conf"));
    assert_eq!(
        routes.span.slice(&c.file(routes.file).text),
        "[\n  nats://n2:6222\n]"
    );
    assert_eq!(c.includes().len(), 1);
    assert_eq!(c.includes()[0].path, PathBuf::from("/etc/nats/routes.conf"));
}

#[test]
fn include_errors_name_the_including_line() {
    let fs = MemFs::new()
        .with("/c/a.conf", "port: 1\ninclude b.conf\n")
        .with("/c/b.conf", "include a.conf\n");
    let e = parse_file(Path::new("/c/a.conf"), &fs).unwrap_err();
    assert!(matches!(e, ConfError::IncludeCycle { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("/c/b.conf:1:1: include cycle: /c/a.conf -> /c/b.conf -> /c/a.conf"),
        "{e}"
    );
    let fs = MemFs::new().with("/c/a.conf", "port: 1\ninclude missing.conf\n");
    let e = parse_file(Path::new("/c/a.conf"), &fs).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/c/missing.conf: cannot read config (included from /c/a.conf:2:1)"),
        "{e}"
    );
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "port: 4222\ncluster { routes = [ a b ] }\n",
            "2:24",
            "expected ',', a new line or ']'",
        ),
        (
            "cluster {\n  port: 6222\n",
            "3:1",
            "'{' opened at 1:9 is never closed",
        ),
        (
            "routes = [ a,\n  b\n",
            "3:1",
            "'[' opened at 1:10 is never closed",
        ),
        ("a: \"abc\n", "1:4", "unterminated string"),
        ("a: [1,,2]", "1:7", "unexpected ','"),
        ("port: 4222 6222", "1:12", "after the value of `port`"),
        ("a:\nb: 1", "1:3", "expected a value, found a new line"),
        ("x: \"\\q\"", "1:5", "invalid escape"),
    ];
    for (text, at, msg) in cases {
        let e = parse_err(text);
        let loc = e.location().unwrap();
        assert_eq!(format!("{}:{}", loc.line, loc.col), *at, "{text:?}: {e}");
        assert!(e.to_string().contains(msg), "{text:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("/etc/nats/nats.conf:{at}: ")),
            "{e}"
        );
    }
}

#[test]
fn values_of_every_kind() {
    let c = parse(
        "a: 1GB\nb: \"2m\"\nc: 2m\nd: yes\ne: off\nf: 0.5\ng: 2016-05-04T18:53:41Z\nh: 127.0.0.1:4222\ni: [1, \"x\", {k: v}]\n",
    );
    let r = c.root();
    assert_eq!(r.get_ci(&["a"]).and_then(Value::as_i64), Some(1 << 30));
    assert_eq!(r.get_ci(&["b"]).and_then(Value::as_str), Some("2m"));
    assert_eq!(r.get_ci(&["c"]).and_then(Value::as_i64), Some(2_000_000));
    assert_eq!(r.get_ci(&["d"]).and_then(Value::as_bool), Some(true));
    assert_eq!(r.get_ci(&["e"]).and_then(Value::as_bool), Some(false));
    assert_eq!(
        r.get_ci(&["f"]).map(|v| v.kind.clone()),
        Some(ValueKind::Float(0.5))
    );
    assert!(matches!(
        r.get_ci(&["g"]).map(|v| &v.kind),
        Some(ValueKind::Datetime(_))
    ));
    assert_eq!(
        r.get_ci(&["h"]).and_then(Value::as_str),
        Some("127.0.0.1:4222")
    );
    assert_eq!(
        r.get_ci(&["i"])
            .and_then(Value::as_array)
            .map(<[Value]>::len),
        Some(3)
    );
}

#[test]
fn later_keys_win_and_lookups_ignore_case() {
    let c = parse("port: 1\nPORT: 2\nhttp_port: 8222\n");
    assert_eq!(known(c.port()), 2);
    assert_eq!(
        c.monitoring(),
        Some(Monitoring {
            host: None,
            port: 8222,
            tls: false
        })
    );
    let c = parse("monitor_port: 8223\n");
    assert_eq!(c.monitoring().map(|m| m.port), Some(8223));
    let c = parse("http: \"0.0.0.0:8224\"\n");
    assert_eq!(
        c.monitoring(),
        Some(Monitoring {
            host: Some("0.0.0.0".into()),
            port: 8224,
            tls: false
        })
    );
}

#[test]
fn wrong_kinds_are_invalid_not_dropped() {
    let c = parse("port: \"abc\"\ncluster { routes: \"nats://a:6222\" }\n");
    assert!(matches!(c.port(), Some(Setting::Invalid(_))));
    assert!(matches!(c.routes(), Some(Setting::Invalid(_))));
}

#[test]
fn accounts_system_account_and_jetstream() {
    let c = parse(
        "system_account: SYS\njetstream { store_dir: /data/js, max_file_store: 10Gi }\naccounts {\n  SYS: { users: [ {user: sys, password: s} ] }\n  APP: { jetstream: enabled, users: [ {user: a, password: x}, {nkey: UABC} ] }\n  EMPTY: {}\n}\n",
    );
    assert_eq!(known(c.system_account()), "SYS");
    assert_eq!(known(c.store_dir()), "/data/js");
    assert_eq!(c.jetstream_enabled(), Some(true));
    let accounts = c.accounts();
    let names: Vec<_> = accounts
        .iter()
        .map(|a| (a.name.as_str(), a.has_users()))
        .collect();
    assert_eq!(names, [("SYS", true), ("APP", true), ("EMPTY", false)]);
    assert_eq!(accounts[1].users, ["a", "UABC"]);
}
