use super::*;
use crate::nats::observe::facts_from;
use std::io::Write;

const INV: &str = "cluster: c1\ndefaults:\n  nats:\n    system_user: {user: sys, password: sysPa55word}\nnodes:\n  - {name: n1, host: 10.0.0.1}\n  - {name: n2, host: 10.0.0.2}\n";

fn sample() -> (Inventory, Observations) {
    let inv = Inventory::parse(std::path::Path::new("inv.yaml"), INV).unwrap();
    let n1 = NodeObservation {
        name: "n1".into(),
        http: HttpBodies {
            varz: Some(Ok((
                200,
                r#"{"server_name":"n1","version":"2.15.1","cluster":{"urls":["nats-route://r:routePa55@10.0.0.2:6222"]}}"#.into(),
            ))),
            healthz: Some(Ok((503, r#"{"status":"unavailable","error":"JetStream has not established contact with a meta leader"}"#.into()))),
            ..Default::default()
        },
        probe: ProbeObservation::Ran {
            run: ProbeRun {
                stdout: "NRS_BEGIN\nSERVICE 0\nCFGFILE /etc/n.conf\nCFGL cluster { routes: [\"nats-route://r:routePa55@10.0.0.2:6222\"] }\nCFGEND\nTCP n2 10.0.0.2 6222 refused\nNRS_END\n".into(),
                stderr: String::new(),
                exit_code: Some(0),
                timed_out: false,
                timeout_ms: 10_000,
            },
            sudo_refused: None,
        },
    };
    let n2 = NodeObservation {
        name: "n2".into(),
        http: HttpBodies {
            varz: Some(Err("connection refused".into())),
            ..Default::default()
        },
        probe: ProbeObservation::NotRun {
            error: "ssh: connection refused".into(),
            unmanageable: None,
        },
    };
    let obs = Observations {
        nodes: vec![n1, n2],
        system: Some(SystemView {
            via: "10.0.0.1:4222".into(),
            errors: vec!["system account RAFTZ from n1: nope".into()],
            by_server: [(
                "n2".to_string(),
                HttpBodies {
                    varz: Some(Ok((
                        200,
                        r#"{"server_name":"n2","version":"2.15.1"}"#.into(),
                    ))),
                    healthz: Some(Ok((200, r#"{"status":"ok"}"#.into()))),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
        }),
    };
    (inv, obs)
}

fn meta() -> Meta {
    Meta {
        captured_at: chrono::DateTime::parse_from_rfc3339("2026-12-02T01:02:03Z")
            .unwrap()
            .into(),
        gather_ms: 1234,
        operator: "root@vm".into(),
    }
}

fn members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (p, b)
        })
        .collect()
}

fn pack(m: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (p, b) in m {
        let mut h = tar::Header::new_gnu();
        h.set_size(b.len() as u64);
        h.set_mode(0o600);
        tar.append_data(&mut h, p, b.as_slice()).unwrap();
    }
    let mut gz = tar.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

#[test]
fn round_trip_gives_the_same_facts_and_no_secret() {
    let (inv, obs) = sample();
    let bytes = write(&inv, INV, &obs, &meta()).unwrap();
    let m = members(&bytes);
    assert_eq!(m.keys().next().map(String::as_str), Some("inventory.yaml"));
    for (p, b) in &m {
        let t = String::from_utf8_lossy(b);
        for s in ["sysPa55word", "routePa55"] {
            assert!(!t.contains(s), "{p} holds {s}: {t}");
        }
    }
    let cap = read("x.tar.gz", &bytes).unwrap();
    assert_eq!(cap.manifest.cluster, "c1");
    assert_eq!(cap.manifest.captured_at, "2026-12-02T01:02:03Z");
    assert_eq!(cap.manifest.inventory_sha256, inv.sha256);
    assert_eq!(
        cap.manifest.versions.get("n1").map(String::as_str),
        Some("2.15.1")
    );
    assert_eq!(cap.manifest.members.len(), m.len() - 1);
    assert_eq!(cap.observations.nodes.len(), 2);
    assert_eq!(cap.observations.nodes[1], obs.nodes[1]);
    assert_eq!(
        cap.observations.system.as_ref().unwrap().errors,
        obs.system.as_ref().unwrap().errors
    );
    let th = Default::default();
    let live = facts_from(&inv, &obs, &th);
    let offline = facts_from(&cap.inventory, &cap.observations, &th);
    let a = serde_json::to_value(&live).unwrap();
    let b = serde_json::to_value(&offline).unwrap();
    assert_eq!(a["healthy"], b["healthy"]);
    assert_eq!(a["nodes"], b["nodes"], "node facts are the same offline");
    assert_eq!(
        b["nodes"]["n2"]["source"], "system",
        "the system view came back"
    );
    assert!(m.contains_key("system/n2/varz.json") && m.contains_key("system/observation.json"));
    assert_eq!(a["signal"], b["signal"]);
}

#[test]
fn altered_missing_or_extra_members_are_refused() {
    let (inv, obs) = sample();
    let bytes = write(&inv, INV, &obs, &meta()).unwrap();
    let m = members(&bytes);
    let mut altered = m.clone();
    altered.insert(
        "nodes/n1/varz.json".into(),
        b"{\"server_name\":\"n1\"}".to_vec(),
    );
    let e = read("x.tar.gz", &pack(&altered)).unwrap_err().to_string();
    assert!(
        e.contains("nodes/n1/varz.json") && e.contains("altered"),
        "{e}"
    );
    let mut missing = m.clone();
    missing.remove("nodes/n1/probe.txt");
    let e = read("x.tar.gz", &pack(&missing)).unwrap_err().to_string();
    assert!(
        e.contains("nodes/n1/probe.txt") && e.contains("missing"),
        "{e}"
    );
    let mut extra = m.clone();
    extra.insert("nodes/n3/varz.json".into(), b"{}".to_vec());
    let e = read("x.tar.gz", &pack(&extra)).unwrap_err().to_string();
    assert!(
        e.contains("nodes/n3/varz.json") && e.contains("not in the manifest"),
        "{e}"
    );
    let e = read("x.tar.gz", b"not an archive").unwrap_err().to_string();
    assert!(e.contains("x.tar.gz") && e.contains("tar.gz"), "{e}");
    // Unaltered, repacked: still fine.
    assert!(read("x.tar.gz", &pack(&m)).is_ok());
}
