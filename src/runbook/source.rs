//! Finding runbooks: built-in (embedded at build time), an extra folder that overrides them
//! by id, or a path to a file.

use super::plan::{Plan, Source};
use super::validate as plan;
use crate::input_error::{InputProblem, InputProblems};
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/builtin_runbooks.rs"));

/// Where runbooks are looked up.
#[derive(Debug, Clone, Default)]
pub struct Library {
    /// `--runbooks DIR`: its files override built-ins of the same id.
    pub extra_dir: Option<PathBuf>,
}

/// Could not find or load a runbook.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("unknown runbook `{name}`; known runbooks: {known}")]
    Unknown { name: String, known: String },
    #[error("{0}")]
    Invalid(#[from] InputProblems),
}

impl Library {
    pub fn new(extra_dir: Option<PathBuf>) -> Self {
        Library { extra_dir }
    }

    /// Every runbook (built-in overridden by the extra folder), sorted by id. Invalid files
    /// are returned as errors so `runbooks validate` can report them.
    pub fn all(&self) -> Vec<Result<Plan, InputProblems>> {
        let mut by_id: std::collections::BTreeMap<String, Result<Plan, InputProblems>> =
            Default::default();
        for (name, text) in BUILTIN {
            let path = PathBuf::from("runbooks").join(name);
            let r = plan::parse(&path, text, Source::Builtin);
            by_id.insert(id_of(name, &r), r);
        }
        if let Some(dir) = &self.extra_dir {
            for path in yaml_files(dir) {
                let r = load_file(&path);
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                by_id.insert(id_of(&name, &r), r);
            }
        }
        by_id.into_values().collect()
    }

    /// Resolves an id (extra folder first, then built-in) or a path to a `.yaml` file.
    pub fn load(&self, name: &str) -> Result<Plan, LoadError> {
        let as_path = Path::new(name);
        if name.ends_with(".yaml") || name.ends_with(".yml") || name.contains('/') {
            if !as_path.exists() {
                return Err(LoadError::Invalid(InputProblems(vec![InputProblem::new(
                    as_path,
                    "no such file",
                )])));
            }
            return Ok(load_file(as_path)?);
        }
        if let Some(dir) = &self.extra_dir {
            for path in yaml_files(dir) {
                if let Ok(p) = load_file(&path) {
                    if p.id == name {
                        return Ok(p);
                    }
                }
            }
        }
        for (file, text) in BUILTIN {
            if file.trim_end_matches(".yaml") == name {
                let path = PathBuf::from("runbooks").join(file);
                return Ok(plan::parse(&path, text, Source::Builtin)?);
            }
        }
        let known = self
            .all()
            .into_iter()
            .filter_map(|r| r.ok().map(|p| p.id))
            .collect::<Vec<_>>()
            .join(", ");
        Err(LoadError::Unknown {
            name: name.to_string(),
            known,
        })
    }
}

/// Loads and validates one runbook file.
pub fn load_file(path: &Path) -> Result<Plan, InputProblems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputProblems(vec![InputProblem::new(
            path,
            format!("cannot read runbook: {e}"),
        )])
    })?;
    plan::parse(path, &text, Source::File(path.to_path_buf()))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn id_of(file: &str, r: &Result<Plan, InputProblems>) -> String {
    match r {
        Ok(p) => p.id.clone(),
        Err(_) => file
            .trim_end_matches(".yaml")
            .trim_end_matches(".yml")
            .to_string(),
    }
}
