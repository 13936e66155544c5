//! Replacing the `cluster.routes` array and nothing else: every byte before `[` and after `]`
//! is kept, and the new elements follow the old ones' layout (one line or one per line,
//! separators, indentation, quoting — JSON stays JSON).

use super::config::{Config, Routes, Setting};
use super::lexer::Quote;
use super::source::Origin;
use super::span::{FileId, Span};
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
    Ok(splice(file_text, &routes, new_routes))
}

impl Config {
    /// [`rewrite_routes`] on the file where the routes live.
    pub fn rewrite_routes(&self, new_routes: &[String]) -> Result<Rewritten, RewriteError> {
        let routes = writable_routes(self)?;
        let source = self.file(routes.file);
        Ok(Rewritten {
            file: routes.file,
            path: source.path.clone(),
            text: splice(&source.text, &routes, new_routes),
        })
    }
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
    let trail = text[last.end..close].to_string();
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
    let starts_like_another_kind = first.is_ascii_digit() || "-$\"'[{(.".contains(first);
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
        let items: Vec<String> = new_routes.iter().map(|r| render(r, quote)).collect();
        format!("{lead}{}{trail}", items.join(&sep))
    };
    format!("{}[{body}]{}", &text[..open], &text[close + 1..])
}
