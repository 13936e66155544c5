//! Any route list survives rewrite + re-parse on every fixture, bytes outside the array kept.
use super::*;
use proptest::prelude::*;

fn url() -> impl Strategy<Value = String> {
    let plain = (
        prop::sample::select(vec!["nats-route://", "nats://", "tls://", ""]),
        prop::option::of(("[a-z][a-z0-9]{0,6}", "[A-Za-z0-9%]{1,8}")),
        "[a-z][a-z0-9.-]{0,20}",
        1u16..,
    )
        .prop_map(|(scheme, auth, host, port)| {
            let auth = auth.map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
            format!("{scheme}{auth}{host}:{port}")
        });
    // Anything at all must come back as written: quoting decides how.
    let odd = "[^\\x00]{1,24}";
    prop_oneof![4 => plain, 1 => odd]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn any_route_list_round_trips_through_every_fixture(new_routes in prop::collection::vec(url(), 0..6)) {
        for dir in ["classic-0x", "colon", "space", "one-line", "slash-comments", "chart-v1", "include", "route-credentials", "tls"] {
            let main = fixtures().join(dir).join("nats.conf");
            let cfg = parse_file(&main, &LocalFs).unwrap();
            let routes = known(cfg.routes());
            let rewritten = cfg.rewrite_routes(&new_routes).unwrap();
            let old = &cfg.file(routes.file).text;
            let tail = old.len() - routes.span.end;
            prop_assert_eq!(&rewritten.text[..routes.span.start], &old[..routes.span.start]);
            prop_assert_eq!(&rewritten.text[rewritten.text.len() - tail..], &old[routes.span.end..]);
            let mut fs = nats_rescue::natsconf::MemFs::new();
            for f in cfg.files() {
                fs.insert(&f.path, f.text.to_string());
            }
            fs.insert(&rewritten.path, rewritten.text.clone());
            let again = parse_file(&main, &fs).map_err(|e| TestCaseError::fail(format!("{dir}: {e}\n{}", rewritten.text)))?;
            prop_assert_eq!(route_texts(&again), new_routes.clone(), "{}:\n{}", dir, rewritten.text);
        }
    }
}
