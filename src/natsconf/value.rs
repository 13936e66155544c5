//! The parsed tree: every value and key keeps its file and byte span.

use super::lexer::Quote;
use super::span::{FileId, Span};

/// A value as written, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    /// Covers the whole value: quotes of a string, `[`…`]` of an array, `{`…`}` of a map.
    pub span: Span,
    pub file: FileId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    String {
        value: String,
        quote: Quote,
    },
    /// Size suffixes already applied (`1GB` = 1073741824); the text is in the span.
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// ISO8601 Zulu, as written.
    Datetime(String),
    Array(Vec<Value>),
    Map(Map),
    /// `$NAME`: `resolved` is the value of the latest key `NAME` defined before it in an
    /// enclosing block, else of the environment entry `NAME`; `None` when neither exists
    /// (the server would refuse the config; we report it and never guess).
    Variable {
        name: String,
        resolved: Option<Box<Value>>,
    },
}

/// Keys in the order written; later keys win, as in the server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    pub entries: Vec<Entry>,
}

/// `key: value`, or a key brought in by an `include` (then `file` is the included file).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub file: FileId,
    pub value: Value,
}

impl Map {
    /// The last entry named exactly `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    /// The last entry whose key is one of `keys`, ignoring ASCII case (the server lowercases
    /// the keys it knows, and several have aliases: `store_dir`/`storedir`, `pass`/`password`).
    pub fn entry_ci(&self, keys: &[&str]) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| keys.iter().any(|k| e.key.eq_ignore_ascii_case(k)))
    }

    /// The value of [`Map::entry_ci`].
    pub fn get_ci(&self, keys: &[&str]) -> Option<&Value> {
        self.entry_ci(keys).map(|e| &e.value)
    }
}

impl Value {
    /// The value itself, or what its variable resolved to (`None`: unresolved variable).
    pub fn resolved(&self) -> Option<&Value> {
        match &self.kind {
            ValueKind::Variable { resolved, .. } => resolved.as_deref().and_then(Value::resolved),
            _ => Some(self),
        }
    }

    /// The name of the variable this value is (or leads to) that nothing defines.
    pub fn unresolved_variable(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Variable {
                name,
                resolved: None,
            } => Some(name),
            ValueKind::Variable {
                resolved: Some(v), ..
            } => v.unresolved_variable(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.resolved()?.kind {
            ValueKind::String { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.resolved()?.kind {
            ValueKind::Integer(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.resolved()?.kind {
            ValueKind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.resolved()?.kind {
            ValueKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match &self.resolved()?.kind {
            ValueKind::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The span of a string's content, without its quotes.
    pub fn inner_span(&self) -> Span {
        match &self.kind {
            ValueKind::String {
                quote: Quote::Double | Quote::Single,
                ..
            } if self.span.len() >= 2 => Span::new(self.span.start + 1, self.span.end - 1),
            _ => self.span,
        }
    }

    /// What kind of value this is, for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            ValueKind::String { value, .. } => format!("string {value:?}"),
            ValueKind::Integer(n) => format!("integer {n}"),
            ValueKind::Float(f) => format!("float {f}"),
            ValueKind::Bool(b) => format!("boolean {b}"),
            ValueKind::Datetime(d) => format!("datetime {d}"),
            ValueKind::Array(_) => "an array".into(),
            ValueKind::Map(_) => "a block".into(),
            ValueKind::Variable { name, .. } => format!("${name}"),
        }
    }
}
