#![allow(clippy::unwrap_used)]
use super::*;

fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| a.to_string()).collect()
}

#[test]
fn config_flag_in_every_go_flag_form() {
    for a in [
        &["nats-server", "-c", "/etc/n.conf"][..],
        &["nats-server", "--config", "/etc/n.conf"],
        &["nats-server", "-config=/etc/n.conf"],
        &[
            "nats-server",
            "-P",
            "/run/n.pid",
            "--c=/etc/n.conf",
            "-l",
            "x",
        ],
    ] {
        assert_eq!(
            config_from_args(&args(a), None).as_deref(),
            Some("/etc/n.conf"),
            "{a:?}"
        );
    }
    assert_eq!(
        config_from_args(
            &args(&["nats-server", "-c", "nats.conf"]),
            Some("/srv/nats")
        )
        .as_deref(),
        Some("/srv/nats/nats.conf")
    );
    // -c's value is never the program name, and a missing value is no config
    assert_eq!(config_from_args(&args(&["-c"]), None), None);
    assert_eq!(config_from_args(&args(&["nats-server", "-c"]), None), None);
    assert_eq!(config_from_args(&args(&["nats-server", "-js"]), None), None);
    assert_eq!(
        pid_file_from_args(&args(&["nats-server", "-c", "x", "-P", "/run/n.pid"])).as_deref(),
        Some("/run/n.pid")
    );
    assert_eq!(
        pid_file_from_args(&args(&["nats-server", "--pid=/run/n.pid"])).as_deref(),
        Some("/run/n.pid")
    );
}

#[test]
fn exec_start_from_systemctl_show_and_from_a_unit_file() {
    let show = "{ path=/usr/sbin/nats-server ; argv[]=/usr/sbin/nats-server -c /etc/nats/nats-server.conf --pid /run/nats/nats.pid ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }";
    assert_eq!(
        exec_start_args(show),
        args(&[
            "/usr/sbin/nats-server",
            "-c",
            "/etc/nats/nats-server.conf",
            "--pid",
            "/run/nats/nats.pid"
        ])
    );
    assert_eq!(
        exec_start_args("ExecStart=-/usr/bin/nats-server --config \"/etc/nats/my conf.conf\""),
        args(&["/usr/bin/nats-server", "--config", "/etc/nats/my conf.conf"])
    );
}

const FIND_OUT: &str = "NRI_BEGIN
USER ops
HOSTNAME nats-1
SELFADDR 10.0.1.11
SELFADDR 127.0.0.1
SELFADDR 10.0.1.11
SYSTEMD yes
PROC 812
PARG 812 /usr/sbin/nats-server
PARG 812 -c
PARG 812 /etc/nats/prod.conf
PEXE 812 /usr/sbin/nats-server
PCWD 812 /
PUNIT 812 nats-server.service
UNIT nats-server.service
UEXEC nats-server.service { path=/usr/sbin/nats-server ; argv[]=/usr/sbin/nats-server -c /etc/nats/other.conf ; ignore_errors=no }
UACTIVE nats-server.service active
URELOAD nats-server.service yes
COMMON /etc/nats/nats-server.conf
NRI_END
";

#[test]
fn the_running_process_names_the_config_before_its_unit_and_the_usual_paths() {
    let s = HostScan::parse(FIND_OUT);
    assert!(s.complete && s.systemd);
    assert_eq!(s.user.as_deref(), Some("ops"));
    assert_eq!(s.self_addrs, vec!["10.0.1.11", "127.0.0.1"]);
    assert_eq!(s.processes.len(), 1);
    let p = &s.processes[0];
    assert_eq!(
        (p.pid, p.unit.as_deref()),
        (812, Some("nats-server.service"))
    );
    let c = s.choose_config().unwrap();
    assert_eq!(c.path, "/etc/nats/prod.conf");
    assert_eq!(c.source, ConfigSource::Process(812));
    let u = s.managing_unit().unwrap();
    assert_eq!(u.name, "nats-server.service");
    assert!(u.has_reload);
    assert_eq!(u.active.as_deref(), Some("active"));
}

#[test]
fn a_stopped_server_is_found_through_its_unit_then_through_the_usual_paths() {
    let stopped: String = FIND_OUT
        .lines()
        .filter(|l| !l.starts_with('P'))
        .map(|l| format!("{l}\n"))
        .collect();
    let s = HostScan::parse(&stopped);
    let c = s.choose_config().unwrap();
    assert_eq!(c.path, "/etc/nats/other.conf");
    assert_eq!(c.source, ConfigSource::Unit("nats-server.service".into()));
    assert_eq!(s.managing_unit().unwrap().name, "nats-server.service");

    let bare: String = stopped
        .lines()
        .filter(|l| !l.starts_with('U'))
        .map(|l| format!("{l}\n"))
        .collect();
    let s = HostScan::parse(&bare);
    let c = s.choose_config().unwrap();
    assert_eq!(
        (c.path.as_str(), &c.source),
        ("/etc/nats/nats-server.conf", &ConfigSource::CommonPath)
    );
    assert!(s.managing_unit().is_none());
    // nothing at all: no config, and the script's end says it ran
    let s = HostScan::parse("NRI_BEGIN\nSYSTEMD no\nNRI_END\n");
    assert!(s.complete && s.choose_config().is_none() && s.managing_unit().is_none());
    assert!(!HostScan::parse("NRI_BEGIN\n").complete);
}

#[test]
fn a_process_outside_systemd_is_not_given_a_units_commands() {
    let s = HostScan::parse(
        "SYSTEMD yes\nPROC 9\nPARG 9 nats-server\nPARG 9 -c\nPARG 9 /srv/n.conf\nUNIT nats.service\nUEXEC nats.service /usr/sbin/nats-server -c /etc/x.conf\nNRI_END\n",
    );
    assert_eq!(s.choose_config().unwrap().path, "/srv/n.conf");
    assert!(s.managing_unit().is_none());
}

#[test]
fn config_read_gives_settings_without_secrets() {
    let out = "NRI_BEGIN
CFGFILE /etc/nats/n1.conf
CFGL server_name: n1
CFGL http_port: 8333
CFGL port: 4333
CFGL system_account: SYS
CFGL jetstream { store_dir: \"/data/nats\" }
CFGL pid_file: /run/nats.pid
CFGL include accounts.conf
CFGL cluster {
CFGL   name: prod
CFGL   port: 6333
CFGL   authorization { user: route, password: S3cretRoute }
CFGL   routes: [ nats-route://route:S3cretRoute@n1:6333, nats-route://route:S3cretRoute@n2:6333, \"nats://10.0.0.3:6333\", nats://n2:6333 ]
CFGL }
CFGEND
RDNS n1 ok 10.0.0.1
RDNS n2 ok 10.0.0.2
RDNS gone failed
CFGFILE /etc/nats/accounts.conf
CFGL accounts { SYS { users: [ { user: admin, password: S3cretSys } ] }, APP { users: [ {user: a, password: b} ] } }
CFGEND
LABCTL /srv/n1/ctl
NRI_END
";
    let r = ConfigRead::parse(out);
    assert!(r.complete);
    assert_eq!(r.lab_ctl.as_deref(), Some("/srv/n1/ctl"));
    assert_eq!(r.resolved["n2"], vec!["10.0.0.2"]);
    assert!(r.resolved["gone"].is_empty());
    let d = r.details().unwrap();
    assert_eq!(d.server_name.as_deref(), Some("n1"));
    assert_eq!(d.cluster_name.as_deref(), Some("prod"));
    assert_eq!(d.cluster_port, Some(6333));
    assert_eq!(d.monitor_port, Some(8333));
    assert_eq!(d.client_port, Some(4333));
    assert_eq!(d.store_dir.as_deref(), Some("/data/nats"));
    assert_eq!(d.pid_file.as_deref(), Some("/run/nats.pid"));
    assert_eq!(d.system_account.as_deref(), Some("SYS"));
    assert_eq!(d.system_users, vec!["admin"]);
    assert!(d.routes_have_credentials);
    let eps: Vec<String> = d.routes.iter().map(ToString::to_string).collect();
    assert_eq!(
        eps,
        vec!["n1:6333", "n2:6333", "10.0.0.3:6333"],
        "deduplicated"
    );
    assert!(!format!("{d:?}").contains("S3cret"), "{d:?}");
}

#[test]
fn helm_json_config_with_server_name_from_the_environment() {
    let out = "CFGFILE /etc/nats-config/nats.conf
CFGL {
CFGL   \"cluster\": { \"name\": \"nats\", \"port\": 6222, \"routes\": [\"nats://nats-0.nats:6222\", \"nats://nats-1.nats:6222\"] },
CFGL   \"http_port\": 8222,
CFGL   \"jetstream\": { \"max_file_store\": 10Gi, \"store_dir\": \"/data\" },
CFGL   \"server_name\": $SERVER_NAME
CFGL }
CFGEND
NRI_END
";
    let d = ConfigRead::parse(out).details().unwrap();
    assert_eq!(d.server_name.as_deref(), Some("$SERVER_NAME"));
    assert_eq!(d.routes.len(), 2);
    assert_eq!(d.store_dir.as_deref(), Some("/data"));
    assert_eq!(d.system_account, None);
}

#[test]
fn a_broken_config_is_an_error_with_the_secret_redacted() {
    let out = "CFGFILE /c.conf\nCFGL authorization { password: \"Hunter2Secret\nCFGEND\n";
    let e = ConfigRead::parse(out).details().unwrap_err();
    assert!(!e.contains("Hunter2Secret"), "{e}");
    assert!(ConfigRead::parse("NRI_END\n").details().is_err());
}

#[test]
fn read_script_quotes_the_path() {
    let s = read_script("/etc/my nats/x.conf");
    assert!(s.starts_with("CONFIG_FILE='/etc/my nats/x.conf'\n"), "{s}");
}

#[test]
fn processes_of_unknown_namespace_are_ours_only_when_alone() {
    let one = "PNSUNKNOWN 7\nPROC 7\nPARG 7 nats-server\nPARG 7 -c\nPARG 7 /a.conf\nNRI_END\n";
    let s = HostScan::parse(one);
    assert_eq!(s.own_processes().len(), 1);
    assert_eq!(s.ambiguous_processes(), 0);
    assert_eq!(s.choose_config().unwrap().path, "/a.conf");
    let two = format!("{one}PNSUNKNOWN 8\nPROC 8\nPARG 8 nats-server\nPARG 8 -c\nPARG 8 /b.conf\nCOMMON /etc/nats/nats-server.conf\n");
    let s = HostScan::parse(&two);
    assert!(s.own_processes().is_empty());
    assert_eq!(s.ambiguous_processes(), 2);
    assert_eq!(
        s.choose_config(),
        None,
        "neither, nor a usual path: a guess"
    );
    // one whose namespace matched wins over those of unknown namespace
    let s = HostScan::parse(&format!(
        "{two}PROC 9\nPARG 9 nats-server\nPARG 9 --config=/c.conf\n"
    ));
    assert_eq!(s.own_processes().len(), 1);
    assert_eq!(s.choose_config().unwrap().path, "/c.conf");
}

#[test]
fn find_script_runs_here_and_ends() {
    // The real script under sh on this machine: it must finish, list no process of another
    // network namespace as ours, and name only existing usual paths.
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(FIND_SCRIPT)
        .output()
        .unwrap();
    let s = HostScan::parse(&String::from_utf8_lossy(&o.stdout));
    assert!(s.complete, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(s.user.is_some());
    for c in &s.common {
        assert!(Path::new(c).exists(), "{c}");
    }
    let me = std::fs::read_link("/proc/self/ns/net").unwrap();
    for p in s.own_processes() {
        let ns = std::fs::read_link(format!("/proc/{}/ns/net", p.pid));
        if let Ok(ns) = ns {
            assert_eq!(ns, me, "pid {} is in another namespace", p.pid);
        }
    }
}
