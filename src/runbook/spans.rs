//! Source positions of a runbook's keys, from a YAML parser that keeps marks (saphyr), so a
//! problem found after deserialization still points at the line and column the author wrote.

use saphyr::{LoadableYamlNode, MarkedYaml, YamlData};

/// One step of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The parsed document with marks. Empty when the text is not YAML (deserialization then
/// reports the syntax error with its own position).
pub struct Spans<'t> {
    root: Option<MarkedYaml<'t>>,
}

/// 1-based line and column.
pub type Position = (usize, usize);

impl<'t> Spans<'t> {
    pub fn parse(text: &'t str) -> Spans<'t> {
        let root = MarkedYaml::load_from_str(text)
            .ok()
            .and_then(|docs| docs.into_iter().next());
        Spans { root }
    }

    /// The position of the node at `path` (of its key when the last segment is a key), or of
    /// the nearest existing ancestor: a missing field points at its step.
    pub fn locate(&self, path: &[Seg<'_>]) -> Option<Position> {
        let mut node = self.root.as_ref()?;
        let mut best = None;
        for seg in path {
            match (seg, &node.data) {
                (Seg::Key(k), YamlData::Mapping(m)) => {
                    let Some((key, value)) = m.iter().find(|(key, _)| key_is(key, k)) else {
                        break;
                    };
                    best = Some(position(key));
                    node = value;
                }
                (Seg::Index(i), YamlData::Sequence(s)) => {
                    let Some(item) = s.get(*i) else { break };
                    best = Some(item_position(item));
                    node = item;
                }
                _ => break,
            }
        }
        best
    }
}

fn key_is(key: &MarkedYaml<'_>, name: &str) -> bool {
    match &key.data {
        YamlData::Value(v) => v.as_str() == Some(name),
        YamlData::Representation(r, _, _) => r.as_ref() == name,
        _ => false,
    }
}

fn position(n: &MarkedYaml<'_>) -> Position {
    (n.span.start.line(), n.span.start.col() + 1)
}

/// A sequence item's mapping starts at its first key; the author sees the item at its `-`.
fn item_position(n: &MarkedYaml<'_>) -> Position {
    let (line, col) = position(n);
    if matches!(n.data, YamlData::Mapping(_)) && col > 2 {
        (line, col - 2)
    } else {
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "id: x\nsteps:\n  - id: a\n    kind: diagnose\n  - id: b\n    kind: group\n    steps:\n      - id: c\n        run: \"true\"\n";

    #[test]
    fn keys_items_and_missing_fields() {
        let s = Spans::parse(TEXT);
        assert_eq!(s.locate(&[Seg::Key("id")]), Some((1, 1)));
        assert_eq!(
            s.locate(&[Seg::Key("steps"), Seg::Index(0), Seg::Key("kind")]),
            Some((4, 5))
        );
        // A missing field points at its step's `-`.
        assert_eq!(
            s.locate(&[Seg::Key("steps"), Seg::Index(1), Seg::Key("check")]),
            Some((5, 3))
        );
        assert_eq!(
            s.locate(&[
                Seg::Key("steps"),
                Seg::Index(1),
                Seg::Key("steps"),
                Seg::Index(0),
                Seg::Key("run")
            ]),
            Some((9, 9))
        );
    }

    #[test]
    fn not_yaml_locates_nothing() {
        assert_eq!(Spans::parse("a: [").locate(&[Seg::Key("a")]), None);
    }
}
