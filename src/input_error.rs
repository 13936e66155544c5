//! Errors in files a user wrote (inventory, runbooks): always name the file, and the line,
//! column, step and field where known, so the author can go straight to the mistake.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a user-written file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Step id, for runbooks.
    pub step: Option<String>,
    /// Field path, e.g. `steps[2].order` or `nodes[1].ssh.port`.
    pub field: Option<String>,
    pub message: String,
}

impl InputProblem {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        InputProblem {
            file: file.to_path_buf(),
            line: None,
            column: None,
            step: None,
            field: None,
            message: message.into(),
        }
    }
    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }
    pub fn step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Builds a problem from a YAML (de)serialization error, keeping its position.
    pub fn from_yaml(file: &Path, err: &yaml_serde::Error) -> Self {
        let loc = err.location();
        let mut msg = err.to_string();
        // yaml_serde appends " at line L column C"; we print the position ourselves.
        if let Some(idx) = msg.find(" at line ") {
            msg.truncate(idx);
        }
        // It prefixes the field path (`steps[1]: unknown field ...`): split it off.
        let (field, message) = match msg.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') && !path.is_empty() => {
                (Some(path.to_string()), rest.to_string())
            }
            _ => (None, msg.clone()),
        };
        // Name the offending key in the field path: `steps[1].comfirm`.
        let field = match (field, message.strip_prefix("unknown field `")) {
            (Some(f), Some(rest)) => rest
                .split('`')
                .next()
                .map(|k| format!("{f}.{k}"))
                .or(Some(f)),
            (None, Some(rest)) => rest.split('`').next().map(String::from),
            (f, None) => f,
        };
        InputProblem {
            file: file.to_path_buf(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            step: None,
            field,
            message,
        }
    }
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ":")?;
        if let Some(s) = &self.step {
            write!(f, " step `{s}`")?;
        }
        if let Some(fl) = &self.field {
            write!(f, " field `{fl}`")?;
        }
        if self.step.is_some() || self.field.is_some() {
            write!(f, ":")?;
        }
        write!(f, " {}", self.message)
    }
}

/// A list of problems, displayed one per line.
#[derive(Debug, Clone)]
pub struct InputProblems(pub Vec<InputProblem>);

impl fmt::Display for InputProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputProblems {}
