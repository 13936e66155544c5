//! Secrets out of config texts before they reach a journal or a capture.
//!
//! Replaced with [`REDACTED`]: the values of `password`/`pass`/`token`/`seed`/`nkey_seed`/
//! `encryption_password`/`srk_password` (and `jetstream.key`), an earlier definition such a
//! key refers to by `$NAME`, the password (or lone user, which may be a token) of any
//! `scheme://user:pass@` URL, and any string that is an nkey seed. Keys, comments and layout
//! stay; a bare value becomes a quoted string so the result still parses the same shape.
//! A text that does not parse is redacted line by line instead, more coarsely.

use super::lexer::Quote;
use super::parser::Session;
use super::rewrite::render;
use super::source::{Env, NoFs, Origin};
use super::span::{FileId, Span};
use super::value::{Map, Value, ValueKind};
use super::REDACTED;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "token",
    "seed",
    "nkey_seed",
    "encryption_password",
    "srk_password",
];

static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/@,\[\]{}]+)@").expect("static regex")
});
static SEED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bS[A-Z][A-Z2-7]{56}\b").expect("static regex"));
static SECRET_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(["']?\b(?:password|pass|token|seed|nkey_seed|encryption_password|srk_password)\b["']?(?:[ \t]*[:=][ \t]*|[ \t]+))("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;}\]]+)"#,
    )
    .expect("static regex")
});

/// `text` with its secrets replaced by `[REDACTED]`, structure kept (see the module docs).
pub fn redact(text: &str) -> String {
    let env = Env::new();
    let mut session = Session::new(&NoFs, &env, false);
    let id = session.add_file(PathBuf::from("<config>"), text.to_string(), Origin::Main);
    match session.parse(id) {
        Ok(root) => {
            let mut edits = Edits::default();
            walk(&root, "", &mut edits);
            edits.apply(text)
        }
        Err(_) => redact_lines(text),
    }
}

/// Non-overlapping replacements by span; a full redaction wins over a partial one.
#[derive(Default)]
struct Edits {
    by_start: BTreeMap<usize, (Span, String, bool)>,
}

impl Edits {
    fn add(&mut self, span: Span, replacement: String, full: bool) {
        match self.by_start.get(&span.start) {
            Some((_, _, true)) if !full => {}
            _ => {
                self.by_start.insert(span.start, (span, replacement, full));
            }
        }
    }

    fn apply(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (span, replacement, _) in self.by_start.into_values() {
            if span.start < at || span.end > text.len() {
                continue;
            }
            out.push_str(&text[at..span.start]);
            out.push_str(&replacement);
            at = span.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

fn walk(map: &Map, parent: &str, edits: &mut Edits) {
    for entry in &map.entries {
        let key = entry.key.to_ascii_lowercase();
        let secret = SECRET_KEYS.contains(&key.as_str()) || (parent == "jetstream" && key == "key");
        visit(&entry.value, secret, &key, edits);
    }
}

fn visit(v: &Value, secret: bool, key: &str, edits: &mut Edits) {
    match &v.kind {
        ValueKind::Map(m) => walk(m, key, edits),
        ValueKind::Array(items) => items.iter().for_each(|i| visit(i, secret, key, edits)),
        ValueKind::Variable { resolved, .. } => {
            // `password: $PASS` keeps the reference; the definition (if in this text) goes.
            if let Some(def) = resolved
                .as_deref()
                .filter(|d| secret && d.file == FileId::MAIN)
            {
                visit(def, true, key, edits);
            }
        }
        ValueKind::String { value, quote } => {
            if secret || (SEED.is_match(value) && value.len() == 58) {
                replace(v, *quote, REDACTED, true, edits);
            } else if URL_USERINFO.is_match(value) {
                replace(v, *quote, &redact_urls(value), false, edits);
            }
        }
        _ if secret => replace(v, Quote::None, REDACTED, true, edits),
        _ => {}
    }
}

/// Writes `content` in place of `v`, inside its quotes, or as a quoted string if it was bare.
fn replace(v: &Value, quote: Quote, content: &str, full: bool, edits: &mut Edits) {
    match quote {
        Quote::Double => edits.add(
            v.inner_span(),
            render(content, Quote::Double).trim_matches('"').to_string(),
            full,
        ),
        Quote::Single if !content.contains('\'') => {
            edits.add(v.inner_span(), content.to_string(), full)
        }
        _ => edits.add(v.span, render(content, Quote::Double), full),
    }
}

fn redact_urls(s: &str) -> String {
    URL_USERINFO
        .replace_all(s, |c: &regex::Captures<'_>| {
            let userinfo = &c[2];
            let kept = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{REDACTED}"),
                None => REDACTED.to_string(),
            };
            format!("{}{kept}@", &c[1])
        })
        .into_owned()
}

/// For text that does not parse: key/value pairs, URL credentials and seeds found by pattern.
fn redact_lines(text: &str) -> String {
    let pairs = SECRET_PAIR.replace_all(text, |c: &regex::Captures<'_>| {
        format!("{}\"{REDACTED}\"", &c[1])
    });
    let urls = redact_urls(&pairs);
    SEED.replace_all(&urls, REDACTED).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_secret_values_and_url_passwords_keeping_layout() {
        let text = "\
# routes carry the cluster password
cluster {
  authorization { user: ruser, password: T0pS3cret, timeout: 2 }
  routes = [
    nats-route://ruser:T0pS3cret@n2:6222   # n2
    \"nats-route://ruser:T0pS3cret@n3:6222\"
  ]
}
authorization { token: 's3cr3t-token' }
leafnodes { remotes = [ { url: \"nats-leaf://lu:lp@hub:7422\" } ] }
";
        let out = redact(text);
        assert!(
            !out.contains("T0pS3cret") && !out.contains("s3cr3t-token") && !out.contains("lp@"),
            "{out}"
        );
        assert_eq!(
            out,
            "\
# routes carry the cluster password
cluster {
  authorization { user: ruser, password: \"[REDACTED]\", timeout: 2 }
  routes = [
    \"nats-route://ruser:[REDACTED]@n2:6222\"   # n2
    \"nats-route://ruser:[REDACTED]@n3:6222\"
  ]
}
authorization { token: '[REDACTED]' }
leafnodes { remotes = [ { url: \"nats-leaf://lu:[REDACTED]@hub:7422\" } ] }
"
        );
    }

    #[test]
    fn follows_a_secret_variable_to_its_definition() {
        let text = "ROUTE_PASS = \"hunter2\"\ncluster { authorization { user: r, password: $ROUTE_PASS } }\n";
        let out = redact(text);
        assert_eq!(
            out,
            "ROUTE_PASS = \"[REDACTED]\"\ncluster { authorization { user: r, password: $ROUTE_PASS } }\n"
        );
    }

    #[test]
    fn redacts_seeds_bcrypt_and_numbers() {
        let seed = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY";
        assert_eq!(seed.len(), 58);
        let text = format!("accounts {{ A: {{ users: [ {{ nkey: {seed} }}, {{user: b, pass: $2a$11$abcdef}} ] }} }}\ntoken: 12345\n");
        let out = redact(&text);
        assert!(
            !out.contains(seed) && !out.contains("abcdef") && !out.contains("12345"),
            "{out}"
        );
        assert!(out.contains("token: \"[REDACTED]\""), "{out}");
    }

    #[test]
    fn unparseable_text_is_still_redacted() {
        let text = "cluster {\n  password: T0pS3cret\n  routes = [ nats://u:pw1@n2:6222\n";
        let out = redact(text);
        assert!(!out.contains("T0pS3cret") && !out.contains("pw1"), "{out}");
        assert!(out.contains("cluster {\n"), "{out}");
    }

    proptest::proptest! {
        #[test]
        fn no_secret_survives_and_the_shape_stays(secret in "Zq[A-Za-z0-9!%^*~-]{6,12}", user in "[a-z]{1,8}") {
            let text = format!(
                "a_password_var = \"{secret}\"\nauthorization {{ user: {user}, password: {secret} }}\ncluster {{\n  authorization {{ user: {user}, password: $a_password_var }}\n  routes = [ nats-route://{user}:{secret}@n1:6222, \"nats://{user}:{secret}@n2:6222\" ]\n}}\naccounts {{ A {{ users = [ {{ user: x, pass: '{secret}' }} ] }} }}\n"
            );
            let out = redact(&text);
            proptest::prop_assert!(!out.contains(&secret), "{}", out);
            let before = crate::natsconf::parse_str(&text, std::path::Path::new("a.conf"), &NoFs, &Env::new()).unwrap();
            let after = crate::natsconf::parse_str(&out, std::path::Path::new("a.conf"), &NoFs, &Env::new()).unwrap();
            let keys = |c: &crate::natsconf::Config| c.root().entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
            proptest::prop_assert_eq!(keys(&before), keys(&after));
            let users = |c: &crate::natsconf::Config| c.routes().and_then(|r| r.into_known()).map(|r| r.urls().into_iter().map(|u| (u.user, u.host)).collect::<Vec<_>>());
            proptest::prop_assert_eq!(users(&before), users(&after));
        }
    }
}
