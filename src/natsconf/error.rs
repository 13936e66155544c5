//! Errors that point at the file, line and column where the config went wrong.

use super::span::{line_col, line_text};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where in which file: `path:line:col`, with the line's text for a caret display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub line_text: String,
}

impl Location {
    pub(crate) fn at(path: &Path, text: &str, offset: usize) -> Location {
        let lc = line_col(text, offset);
        Location {
            path: path.to_path_buf(),
            line: lc.line,
            col: lc.col,
            line_text: line_text(text, offset).to_string(),
        }
    }

    /// The offending line and a caret under the column, as just and rustc show it.
    pub fn snippet(&self) -> String {
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        let lead: String = self
            .line_text
            .chars()
            .take(self.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "{pad} |\n{num} | {}\n{pad} | {lead}^",
            self.line_text.replace('\r', "")
        )
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// Why a config could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("{}: cannot read config{}: {source}", path.display(), included_from_note(included_from))]
    Read {
        path: PathBuf,
        included_from: Option<Location>,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: {message}\n{}", at.snippet())]
    Syntax { at: Location, message: String },
    #[error("{at}: include cycle: {}", chain_text(chain))]
    IncludeCycle { at: Location, chain: Vec<PathBuf> },
    #[error("{at}: includes nest deeper than {limit} files")]
    IncludeTooDeep { at: Location, limit: usize },
    #[error("{at}: variable `${name}` refers back to itself through the environment")]
    VariableCycle { at: Location, name: String },
}

impl ConfError {
    /// The position the error points at, when it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfError::Read { included_from, .. } => included_from.as_ref(),
            ConfError::Syntax { at, .. }
            | ConfError::IncludeCycle { at, .. }
            | ConfError::IncludeTooDeep { at, .. }
            | ConfError::VariableCycle { at, .. } => Some(at),
        }
    }
}

fn included_from_note(from: &Option<Location>) -> String {
    match from {
        Some(at) => format!(" (included from {at})"),
        None => String::new(),
    }
}

fn chain_text(chain: &[PathBuf]) -> String {
    chain
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_names_file_line_col_and_draws_a_caret() {
        let text = "port: 4222\ncluster { routes = [ a b ] }\n";
        let at = Location::at(Path::new("/etc/nats.conf"), text, 34);
        let e = ConfError::Syntax {
            at,
            message: "expected ',' or ']'".into(),
        };
        let shown = e.to_string();
        assert!(
            shown.starts_with("/etc/nats.conf:2:24: expected ',' or ']'"),
            "{shown}"
        );
        assert!(
            shown.ends_with("2 | cluster { routes = [ a b ] }\n  |                        ^"),
            "{shown}"
        );
    }
}
