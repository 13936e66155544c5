//! Templates (`{{ }}`) and expressions (`when:`, `on:`, `wait_until:`) over minijinja.
//!
//! Command templates are rendered with shell quoting: every interpolated value becomes one
//! shell word (`shlex`), lists become several words, unless the author marks it `| raw`
//! (or the value is an inventory service command, which is a command by nature). Text
//! templates (prompts, summaries) are rendered as plain text.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// Template names ending in this suffix are shell commands (quoted interpolation).
const SHELL_SUFFIX: &str = ".sh";

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        configure(&mut env);
        env
    })
}

/// The language's settings, shared by the global environment (expressions) and the one
/// each compiled [`Template`] owns.
fn configure(env: &mut Environment<'static>) {
    // Chainable: a missing fact (e.g. no /raftz on 2.9.10) is "unknown", never a crash.
    // References to undeclared roots are caught statically by the validator.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(SHELL_SUFFIX) {
            AutoEscape::Custom("shell")
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == AutoEscape::Custom("shell") && !value.is_safe() {
            out.write_str(&shell_words(value))?;
        } else if value.is_undefined() || value.is_none() {
            out.write_str(if state.auto_escape() == AutoEscape::None {
                ""
            } else {
                "''"
            })?;
        } else {
            write!(out, "{value}")
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))?;
        }
        Ok(())
    });
    env.add_filter("raw", |v: Value| -> Value {
        if v.is_safe() {
            v
        } else {
            Value::from_safe_string(v.to_string())
        }
    });
    env.add_filter("streams_lost", streams_lost);
    // `"n2, n3" | names` → ["n2", "n3"]: a comma-separated `--var` as a list.
    env.add_filter("names", |v: Value| -> Vec<String> {
        let s = if v.is_undefined() || v.is_none() {
            String::new()
        } else {
            v.to_string()
        };
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    });
    // `"2.15.1" | version_at_least("2.15")`: false for an unknown version.
    env.add_filter("version_at_least", |v: Value, min: String| -> bool {
        version_at_least(&v.to_string(), &min)
    });
    env.add_test("version_at_least", |v: Value, min: String| -> bool {
        !v.is_none() && !v.is_undefined() && version_at_least(&v.to_string(), &min)
    });
    env.add_filter("quote", |v: Value| -> String { quote(&v.to_string()) });
    env.add_filter("duration", |v: Value| -> String {
        let ms = u64::try_from(v.as_i64().unwrap_or(0)).unwrap_or(0);
        crate::duration::format(std::time::Duration::from_millis(ms))
    });
}

/// Numeric dotted comparison (`2.15.1` ≥ `2.15`); a leading `v` and a `-dev`-style suffix
/// are ignored; anything unparsable is not at least anything.
pub fn version_at_least(v: &str, min: &str) -> bool {
    fn parts(s: &str) -> Option<Vec<u64>> {
        let s = s.trim().trim_start_matches('v');
        let s = s.split(['-', '+']).next()?;
        s.split('.').map(|p| p.parse().ok()).collect()
    }
    match (parts(v), parts(min)) {
        (Some(a), Some(b)) => {
            for (i, want) in b.iter().enumerate() {
                let have = a.get(i).copied().unwrap_or(0);
                if have != *want {
                    return have > *want;
                }
            }
            true
        }
        _ => false,
    }
}

/// A template compiled once, when its runbook is validated: plain text (prompts, summaries)
/// or a shell command (every interpolated value quoted).
#[derive(Clone)]
pub struct Template {
    src: Arc<str>,
    shell: bool,
    env: Arc<Environment<'static>>,
}

impl Template {
    /// Compiles `src`; `shell` quotes every interpolated value as one shell word.
    pub fn compile(
        src: &str,
        shell: bool,
    ) -> Result<(Template, BTreeSet<String>), TemplateProblem> {
        let mut env = Environment::new();
        configure(&mut env);
        env.add_template_owned(template_name(shell), src.to_string())
            .map_err(|e| TemplateProblem {
                message: describe(&e),
            })?;
        let vars = env
            .get_template(template_name(shell))
            .map(|t| t.undeclared_variables(true).into_iter().collect())
            .map_err(|e| TemplateProblem {
                message: describe(&e),
            })?;
        Ok((
            Template {
                src: Arc::from(src),
                shell,
                env: Arc::new(env),
            },
            vars,
        ))
    }

    /// The text as written in the runbook.
    pub fn source(&self) -> &str {
        &self.src
    }

    pub fn is_shell(&self) -> bool {
        self.shell
    }

    pub fn render(&self, ctx: &Value) -> Result<String, String> {
        self.env
            .get_template(template_name(self.shell))
            .and_then(|t| t.render(ctx))
            .map_err(|e| describe(&e))
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template({:?})", self.src)
    }
}

fn template_name(shell: bool) -> &'static str {
    if shell {
        "t.sh"
    } else {
        "t.txt"
    }
}

/// An expression (`when:`, `on:`, `wait_until:` …) compiled once.
#[derive(Clone)]
pub struct Expr {
    src: Arc<str>,
    compiled: Arc<minijinja::Expression<'static, 'static>>,
    /// The variable paths it reads (`facts.has_leader`, `node.name`, …).
    paths: Arc<BTreeSet<String>>,
}

impl Expr {
    pub fn compile(src: &str) -> Result<(Expr, BTreeSet<String>), TemplateProblem> {
        let compiled = env()
            .compile_expression_owned(expression_source(src).to_string())
            .map_err(|e| TemplateProblem {
                message: describe(&e),
            })?;
        let vars: BTreeSet<String> = compiled.undeclared_variables(true).into_iter().collect();
        Ok((
            Expr {
                src: Arc::from(src),
                compiled: Arc::new(compiled),
                paths: Arc::new(vars.clone()),
            },
            vars,
        ))
    }

    /// The expression as written in the runbook.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// The variable paths it reads, attribute lookups included (`facts.up`, `node.name`).
    pub fn paths(&self) -> &BTreeSet<String> {
        &self.paths
    }

    pub fn eval(&self, ctx: &Value) -> Result<Value, String> {
        self.compiled.eval(ctx).map_err(|e| describe(&e))
    }

    /// As a condition.
    pub fn eval_bool(&self, ctx: &Value) -> Result<bool, String> {
        self.eval(ctx).map(|v| v.is_true())
    }

    /// As a list of node names (see [`value_names`]).
    pub fn eval_names(&self, ctx: &Value) -> Result<Vec<String>, String> {
        self.eval(ctx).map(|v| value_names(&v))
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.src)
    }
}

/// One shell word for a string, as `shlex` quotes it.
pub fn quote(s: &str) -> String {
    match shlex::try_quote(s) {
        Ok(q) => q.into_owned(),
        // Only NUL bytes cannot be quoted; they never belong in a command.
        Err(_) => quote(&s.replace('\0', "")),
    }
}

fn shell_words(v: &Value) -> String {
    if v.is_undefined() || v.is_none() {
        return "''".into();
    }
    match v.kind() {
        minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable => {
            match v.try_iter() {
                Ok(it) => it.map(|x| shell_words(&x)).collect::<Vec<_>>().join(" "),
                Err(_) => quote(&v.to_string()),
            }
        }
        minijinja::value::ValueKind::Number | minijinja::value::ValueKind::Bool => v.to_string(),
        minijinja::value::ValueKind::Map => quote(&serde_json::to_string(v).unwrap_or_default()),
        _ => quote(&v.to_string()),
    }
}

/// Whether a text is a template at all.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Strips one outer `{{ … }}` so `when: "{{ x }}"` and `when: "x"` mean the same.
pub fn expression_source(s: &str) -> &str {
    let t = s.trim();
    if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        if !inner.contains("{{") && !inner.contains("}}") {
            return inner.trim();
        }
    }
    t
}

/// A compile-time problem in a template or expression.
#[derive(Debug, Clone)]
pub struct TemplateProblem {
    pub message: String,
}

fn describe(e: &Error) -> String {
    let mut s = e.kind().to_string();
    if let Some(d) = e.detail() {
        s.push_str(": ");
        s.push_str(d);
    }
    s
}

/// Checks syntax; returns the undeclared variables (nested, e.g. `steps.gather.nodes`).
pub fn check_template(src: &str, shell: bool) -> Result<BTreeSet<String>, TemplateProblem> {
    let name = if shell { "check.sh" } else { "check.txt" };
    let t = env()
        .template_from_named_str(name, src)
        .map_err(|e| TemplateProblem {
            message: describe(&e),
        })?;
    Ok(t.undeclared_variables(true).into_iter().collect())
}

/// Checks expression syntax; returns the undeclared variables (nested).
pub fn check_expression(src: &str) -> Result<BTreeSet<String>, TemplateProblem> {
    let e = env()
        .compile_expression(expression_source(src))
        .map_err(|e| TemplateProblem {
            message: describe(&e),
        })?;
    Ok(e.undeclared_variables(true).into_iter().collect())
}

/// Renders a command template with shell quoting.
pub fn render_shell(src: &str, ctx: &Value) -> Result<String, String> {
    env()
        .render_named_str("cmd.sh", src, ctx)
        .map_err(|e| describe(&e))
}

/// Renders a text template (no quoting).
pub fn render_text(src: &str, ctx: &Value) -> Result<String, String> {
    if !is_template(src) {
        return Ok(src.to_string());
    }
    env()
        .render_named_str("text.txt", src, ctx)
        .map_err(|e| describe(&e))
}

/// Evaluates an expression to a value.
pub fn eval(src: &str, ctx: &Value) -> Result<Value, String> {
    let e = env()
        .compile_expression(expression_source(src))
        .map_err(|e| describe(&e))?;
    e.eval(ctx).map_err(|e| describe(&e))
}

/// Evaluates an expression as a condition.
pub fn eval_bool(src: &str, ctx: &Value) -> Result<bool, String> {
    eval(src, ctx).map(|v| v.is_true())
}

/// Evaluates an expression to a list of strings (node names). A single string is a list of
/// one; none/undefined is empty; a list of maps takes each map's `name`.
pub fn eval_names(src: &str, ctx: &Value) -> Result<Vec<String>, String> {
    let v = eval(src, ctx)?;
    Ok(value_names(&v))
}

fn value_names(v: &Value) -> Vec<String> {
    if v.is_undefined() || v.is_none() {
        return Vec::new();
    }
    if let Some(s) = v.as_str() {
        return if s.is_empty() {
            Vec::new()
        } else {
            vec![s.to_string()]
        };
    }
    match v.try_iter() {
        Ok(it) if v.kind() != minijinja::value::ValueKind::Map => it
            .flat_map(|x| {
                if x.kind() == minijinja::value::ValueKind::Map {
                    x.get_attr("name")
                        .ok()
                        .and_then(|n| n.as_str().map(String::from))
                        .into_iter()
                        .collect()
                } else {
                    value_names(&x)
                }
            })
            .collect(),
        _ => vec![v.to_string()],
    }
}

/// A file-name-safe rendering of an id (letters, digits, `-`, `_`, `.`; others become `_`).
pub fn quote_path_component(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `now | streams_lost(before)`: streams (from `facts.streams`) that had messages before and
/// now have fewer or are missing, as readable lines. Empty when every stream kept its data.
fn streams_lost(now: Value, before: Value) -> Vec<String> {
    let key = |s: &Value| {
        (
            s.get_attr("account")
                .ok()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            s.get_attr("name")
                .ok()
                .map(|v| v.to_string())
                .unwrap_or_default(),
        )
    };
    let count = |s: &Value| s.get_attr("max_messages").ok().and_then(|v| v.as_i64());
    let mut lost = Vec::new();
    let Ok(before) = before.try_iter() else {
        return lost;
    };
    for b in before {
        let Some(had) = count(&b) else { continue };
        let k = key(&b);
        let has = now
            .try_iter()
            .ok()
            .and_then(|mut it| it.find(|s| key(s) == k))
            .and_then(|s| count(&s));
        match has {
            Some(n) if n >= had => {}
            Some(n) => lost.push(format!("{} > {}: {had} messages before, {n} now", k.0, k.1)),
            None => lost.push(format!(
                "{} > {}: {had} messages before, not visible now",
                k.0, k.1
            )),
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("2.15.1", "2.15"));
        assert!(version_at_least("v2.16.0-dev", "2.15"));
        assert!(!version_at_least("2.9.10", "2.15"));
        assert!(!version_at_least("2.14.6", "2.15"));
        assert!(version_at_least("2.10.25", "2.10"));
        assert!(!version_at_least("", "2.15"));
    }

    #[test]
    fn shell_values_are_quoted() {
        let ctx = context! { node => context!{ name => "n1; rm -rf /" }, out => "$(reboot)" };
        let s = render_shell("echo {{ node.name }} {{ out }}", &ctx).unwrap();
        assert_eq!(s, "echo 'n1; rm -rf /' '$(reboot)'");
    }

    #[test]
    fn lists_become_words_and_raw_is_raw() {
        let ctx = context! { xs => vec!["a b", "c"], cmd => "systemctl start x" };
        assert_eq!(render_shell("f {{ xs }}", &ctx).unwrap(), "f 'a b' c");
        assert_eq!(
            render_shell("{{ cmd | raw }}", &ctx).unwrap(),
            "systemctl start x"
        );
        assert_eq!(render_shell("{{ missing }}", &ctx).unwrap(), "''");
    }

    #[test]
    fn text_is_not_quoted() {
        let ctx = context! { xs => vec!["n2", "n3"] };
        assert_eq!(
            render_text("start {{ xs | join(', ') }}?", &ctx).unwrap(),
            "start n2, n3?"
        );
    }

    #[test]
    fn expressions_with_or_without_braces() {
        let ctx = context! { facts => context!{ down => vec!["n2"], has_leader => false } };
        assert!(eval_bool(
            "{{ facts.down | length > 0 and not facts.has_leader }}",
            &ctx
        )
        .unwrap());
        assert!(eval_bool("facts.down | length == 1", &ctx).unwrap());
        assert_eq!(eval_names("{{ facts.down }}", &ctx).unwrap(), vec!["n2"]);
        assert!(eval_names("facts.nope", &ctx).unwrap().is_empty());
    }

    #[test]
    fn streams_lost_compares_counts() {
        let before = Value::from_serialize(
            serde_json::json!([{"account": "APP", "name": "ORDERS", "max_messages": 100}]),
        );
        let same = Value::from_serialize(
            serde_json::json!([{"account": "APP", "name": "ORDERS", "max_messages": 100}]),
        );
        let fewer = Value::from_serialize(
            serde_json::json!([{"account": "APP", "name": "ORDERS", "max_messages": 7}]),
        );
        assert!(streams_lost(same, before.clone()).is_empty());
        assert_eq!(
            streams_lost(fewer, before.clone()),
            vec!["APP > ORDERS: 100 messages before, 7 now"]
        );
        assert_eq!(
            streams_lost(Value::from_serialize(serde_json::json!([])), before).len(),
            1
        );
    }

    #[test]
    fn undeclared_variables_are_reported() {
        let vars = check_expression("steps.gather.nodes and vars.x").unwrap();
        assert!(vars.contains("steps.gather.nodes"), "{vars:?}");
        assert!(check_template("{{ oops(", true).is_err());
    }
}
