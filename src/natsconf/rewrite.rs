//! Replacing the `cluster.routes` array and nothing else: every byte before `[` and after `]`
//! is kept, and the new elements follow the old ones' layout (one line or one per line,
//! separators, indentation, quoting — JSON stays JSON).

use super::config::{Config, Routes, Setting};
use super::lexer::Quote;
use super::source::Origin;
use super::span::{FileId, Span};
use super::value::{Map, Value, ValueKind};
use std::path::PathBuf;

/// Why the routes could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the config has no `cluster {{ routes: [...] }}` to rewrite")]
    NoRoutes,
    #[error("`cluster.routes` is not an array ({0}); only a written array can be rewritten")]
    NotAnArray(String),
    #[error("`cluster.routes` is `${0}`; rewrite the definition of `{0}` by hand (other keys may use it)")]
    ViaVariable(String),
    #[error("{}: the text given is not the text the config was parsed from (re-read and re-parse it)", path.display())]
    TextChanged { path: PathBuf },
    #[error("dropping route `${0}` would leave its definition unused, which nats-server rejects (\"unknown field\"); keep it or edit the config by hand")]
    DropsVariable(String),
}

/// A rewritten file: which one, and its new text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub file: FileId,
    pub path: PathBuf,
    pub text: String,
}

/// The routes of `config`, when they are a written array in a file.
fn writable_routes(config: &Config) -> Result<Routes, RewriteError> {
    let routes = match config.routes() {
        None => return Err(RewriteError::NoRoutes),
        Some(Setting::Known(r)) => r,
        Some(Setting::Unresolved(name)) => return Err(RewriteError::ViaVariable(name)),
        Some(Setting::Invalid(why)) => return Err(RewriteError::NotAnArray(why)),
    };
    if let Some(name) = routes.via_variable {
        return Err(RewriteError::ViaVariable(name));
    }
    if matches!(config.file(routes.file).origin, Origin::Env { .. }) {
        return Err(RewriteError::NotAnArray(
            "it comes from the environment".into(),
        ));
    }
    Ok(routes)
}

/// `file_text` (the file holding the routes, see [`Config::routes`]'s `file`) with the routes
/// array replaced by `new_routes`. Fails if `file_text` is not the text `config` was parsed from.
pub fn rewrite_routes(
    file_text: &str,
    config: &Config,
    new_routes: &[String],
) -> Result<String, RewriteError> {
    let routes = writable_routes(config)?;
    let source = config.file(routes.file);
    if *source.text != *file_text {
        return Err(RewriteError::TextChanged {
            path: source.path.clone(),
        });
    }
    check_dropped_variables(config, &routes, new_routes)?;
    Ok(splice(file_text, &routes, new_routes))
}

impl Config {
    /// [`rewrite_routes`] on the file where the routes live.
    pub fn rewrite_routes(&self, new_routes: &[String]) -> Result<Rewritten, RewriteError> {
        let routes = writable_routes(self)?;
        check_dropped_variables(self, &routes, new_routes)?;
        let source = self.file(routes.file);
        Ok(Rewritten {
            file: routes.file,
            path: source.path.clone(),
            text: splice(&source.text, &routes, new_routes),
        })
    }
}

/// A `$NAME` element defined by a key in a file is dropped while nothing else uses it.
fn check_dropped_variables(
    config: &Config,
    routes: &Routes,
    new_routes: &[String],
) -> Result<(), RewriteError> {
    let items = config
        .cluster()
        .and_then(|c| c.map().get_ci(&["routes"]))
        .and_then(Value::as_array)
        .unwrap_or_default();
    for (item, route) in items.iter().zip(&routes.routes) {
        let ValueKind::Variable { name, resolved } = &item.kind else {
            continue;
        };
        if new_routes
            .iter()
            .any(|n| Some(n) == route.text.known() || *n == route.written)
        {
            continue;
        }
        let Some(def) = resolved.as_deref() else {
            continue;
        };
        if matches!(config.file(def.file).origin, Origin::Env { .. }) {
            continue;
        }
        if !used_outside(config.root(), def, routes) {
            return Err(RewriteError::DropsVariable(name.clone()));
        }
    }
    Ok(())
}

/// Whether a variable reference outside the routes array resolves to `def`.
fn used_outside(map: &Map, def: &Value, routes: &Routes) -> bool {
    fn visit(v: &Value, def: &Value, routes: &Routes) -> bool {
        match &v.kind {
            ValueKind::Variable {
                resolved: Some(r), ..
            } => {
                let in_routes = v.file == routes.file
                    && v.span.start >= routes.span.start
                    && v.span.end <= routes.span.end;
                (!in_routes && r.file == def.file && r.span == def.span) || visit(r, def, routes)
            }
            ValueKind::Map(m) => used_outside(m, def, routes),
            ValueKind::Array(items) => items.iter().any(|i| visit(i, def, routes)),
            _ => false,
        }
    }
    map.entries.iter().any(|e| visit(&e.value, def, routes))
}

/// How the existing array is laid out.
struct Layout {
    lead: String,
    sep: String,
    trail: String,
    quote: Quote,
}

fn indent_at(text: &str, offset: usize) -> &str {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

fn has_comment(s: &str) -> bool {
    s.contains('#') || s.contains("//")
}

fn layout(text: &str, routes: &Routes) -> Layout {
    let open = routes.span.start;
    let close = routes.span.end - 1;
    let items: Vec<Span> = routes.routes.iter().map(|r| r.span).collect();
    let json_like = text.trim_start().starts_with('{');
    let quote = routes
        .routes
        .iter()
        .find_map(|r| match r.written.chars().next() {
            Some('"') => Some(Quote::Double),
            Some('\'') => Some(Quote::Single),
            Some('$') => None,
            _ => Some(Quote::None),
        })
        .unwrap_or(if json_like {
            Quote::Double
        } else {
            Quote::None
        });
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        let inner = &text[open + 1..close];
        if !inner.contains('\n') {
            return Layout {
                lead: String::new(),
                sep: ", ".into(),
                trail: String::new(),
                quote,
            };
        }
        let indent = indent_at(text, close);
        let comma = if json_like { "," } else { "" };
        return Layout {
            lead: format!("\n{indent}  "),
            sep: format!("{comma}\n{indent}  "),
            trail: format!("\n{indent}"),
            quote,
        };
    };
    let lead = text[open + 1..first.start].to_string();
    let mut trail = text[last.end..close].to_string();
    // A comment on the last element's line describes that element, which may be gone.
    if let Some(nl) = trail.find('\n') {
        if has_comment(&trail[..nl]) {
            let comma = if trail[..nl].contains(',') { "," } else { "" };
            trail = format!("{comma}{}", &trail[nl..]);
        }
    }
    let sep = match items.get(1) {
        Some(second) => {
            let between = &text[first.end..second.start];
            if has_comment(between) {
                let comma = if between.contains(',') { "," } else { "" };
                format!("{comma}\n{}", indent_at(text, second.start))
            } else {
                between.to_string()
            }
        }
        None if lead.contains('\n') => {
            let comma = json_like || quote == Quote::Double || trail.trim_start().starts_with(',');
            let comma = if comma { "," } else { "" };
            format!("{comma}\n{}", indent_at(text, first.start))
        }
        None => ", ".into(),
    };
    Layout {
        lead,
        sep,
        trail,
        quote,
    }
}

/// Whether `s` reads back as the same string when written without quotes.
fn bare_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // `#` and `//` open a comment where an array element starts.
    let starts_like_another_kind =
        first.is_ascii_digit() || "-$\"'[{(.#".contains(first) || s.starts_with("//");
    let has_terminator = s
        .chars()
        .any(|c| c.is_whitespace() || ",;]}'\"\\".contains(c));
    let lower = s.to_ascii_lowercase();
    let is_bool = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off"
    );
    !(starts_like_another_kind || has_terminator || is_bool)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn render(s: &str, quote: Quote) -> String {
    match quote {
        Quote::Single if !s.contains('\'') && !s.contains('\n') => format!("'{s}'"),
        Quote::None if bare_ok(s) => s.to_string(),
        _ => double_quoted(s),
    }
}

fn splice(text: &str, routes: &Routes, new_routes: &[String]) -> String {
    let Layout {
        lead,
        sep,
        trail,
        quote,
    } = layout(text, routes);
    let open = routes.span.start;
    let close = routes.span.end - 1;
    let body = if new_routes.is_empty() {
        String::new()
    } else {
        // A route that stays keeps its element exactly as written (quotes, `$NAME`).
        let items: Vec<String> = new_routes
            .iter()
            .map(|r| {
                let kept = routes
                    .routes
                    .iter()
                    .find(|old| old.text.known() == Some(r) || old.written == *r);
                kept.map_or_else(|| render(r, quote), |old| old.written.clone())
            })
            .collect();
        format!("{lead}{}{trail}", items.join(&sep))
    };
    format!("{}[{body}]{}", &text[..open], &text[close + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::natsconf::{parse_str, Env, MemFs};
    use std::path::Path;

    fn parse(text: &str) -> Config {
        parse_str(text, Path::new("/n/nats.conf"), &MemFs::new(), &Env::new()).unwrap()
    }

    fn rewrite(text: &str, new: &[&str]) -> String {
        let new: Vec<String> = new.iter().map(|s| s.to_string()).collect();
        rewrite_routes(text, &parse(text), &new).unwrap()
    }

    #[test]
    fn one_line_arrays_stay_one_line() {
        assert_eq!(
            rewrite(
                "cluster { routes: [nats://a:1, nats://b:1] } # end",
                &["nats://a:1", "nats://c:1", "nats://d:1"]
            ),
            "cluster { routes: [nats://a:1, nats://c:1, nats://d:1] } # end"
        );
        assert_eq!(
            rewrite(
                "cluster { routes = [ nats://a:1 ] }",
                &["nats://b:1", "nats://c:1"]
            ),
            "cluster { routes = [ nats://b:1, nats://c:1 ] }"
        );
        assert_eq!(
            rewrite("cluster { routes = [] }", &["nats://b:1"]),
            "cluster { routes = [nats://b:1] }"
        );
        assert_eq!(
            rewrite("cluster { routes = [ nats://a:1 ] }", &[]),
            "cluster { routes = [] }"
        );
    }

    #[test]
    fn multi_line_arrays_keep_indentation_separators_and_trailing_comma() {
        let text = "cluster {\n  routes = [\n    nats://a:1\n    nats://b:1\n  ]\n}\n";
        assert_eq!(
            rewrite(text, &["nats://c:1", "nats://b:1", "nats://d:1"]),
            "cluster {\n  routes = [\n    nats://c:1\n    nats://b:1\n    nats://d:1\n  ]\n}\n"
        );
        let text = "cluster {\n\troutes: [\n\t\t'tls://a:1',\n\t\t'tls://b:1',\n\t]\n}\n";
        assert_eq!(
            rewrite(text, &["tls://a:1", "tls://c:1"]),
            "cluster {\n\troutes: [\n\t\t'tls://a:1',\n\t\t'tls://c:1',\n\t]\n}\n"
        );
        let text = "cluster {\n  routes = [\n    nats://a:1\n  ]\n}\n";
        assert_eq!(
            rewrite(text, &["nats://a:1", "nats://b:1"]),
            "cluster {\n  routes = [\n    nats://a:1\n    nats://b:1\n  ]\n}\n"
        );
    }

    #[test]
    fn json_stays_json() {
        let text = "{\n  \"cluster\": {\n    \"routes\": [\n      \"nats://a:1\"\n    ]\n  }\n}\n";
        assert_eq!(
            rewrite(text, &["nats://a:1", "nats://b:1"]),
            "{\n  \"cluster\": {\n    \"routes\": [\n      \"nats://a:1\",\n      \"nats://b:1\"\n    ]\n  }\n}\n"
        );
        let text = "{\"cluster\": {\"routes\": []}}";
        assert_eq!(
            rewrite(text, &["nats://b:1"]),
            "{\"cluster\": {\"routes\": [\"nats://b:1\"]}}"
        );
    }

    #[test]
    fn comments_between_routes_go_and_unsafe_bare_values_get_quotes() {
        let text =
            "cluster {\n  routes = [ # list\n    nats://a:1, # a\n    nats://b:1 # b\n  ]\n}\n";
        assert_eq!(
            rewrite(text, &["nats://c:1", "10.0.0.4:6222", "nats://x y:1", "#a", "//b"]),
            "cluster {\n  routes = [ # list\n    nats://c:1,\n    \"10.0.0.4:6222\",\n    \"nats://x y:1\",\n    \"#a\",\n    \"//b\"\n  ]\n}\n"
        );
    }

    #[test]
    fn variables_are_kept_when_their_route_stays_and_not_orphaned() {
        let text = "SEED = \"nats://seed:1\"\ncluster { routes = [ $SEED, nats://b:1 ] }\n";
        assert_eq!(
            rewrite(text, &["nats://seed:1", "nats://c:1"]),
            "SEED = \"nats://seed:1\"\ncluster { routes = [ $SEED, nats://c:1 ] }\n"
        );
        let cfg = parse(text);
        let e = rewrite_routes(text, &cfg, &["nats://c:1".to_string()]).unwrap_err();
        assert_eq!(e, RewriteError::DropsVariable("SEED".into()));
        // used elsewhere too: dropping it from the routes is fine
        let text = "SEED = \"nats://seed:1\"\ncluster { routes = [ $SEED ], advertise: $SEED }\n";
        assert_eq!(
            rewrite(text, &["nats://c:1"]),
            "SEED = \"nats://seed:1\"\ncluster { routes = [ nats://c:1 ], advertise: $SEED }\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_rewrite_faithfully() {
        let cfg = parse("port: 4222\n");
        assert_eq!(
            rewrite_routes("port: 4222\n", &cfg, &[]),
            Err(RewriteError::NoRoutes)
        );
        let text = "R = [nats://a:1]\ncluster { routes: $R }\n";
        assert_eq!(
            rewrite_routes(text, &parse(text), &[]),
            Err(RewriteError::ViaVariable("R".into()))
        );
        let text = "cluster { routes: \"nats://a:1\" }\n";
        assert!(matches!(
            rewrite_routes(text, &parse(text), &[]),
            Err(RewriteError::NotAnArray(_))
        ));
        let text = "cluster { routes: [nats://a:1] }\n";
        let e =
            rewrite_routes("cluster { routes: [nats://a:2] }\n", &parse(text), &[]).unwrap_err();
        assert!(matches!(e, RewriteError::TextChanged { .. }));
    }
}
