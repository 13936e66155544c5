//! `nats-rescue generate`: the man pages and shell completions, written from the CLI
//! definition itself so they cannot drift from it. Hidden: scripts/release.sh calls it to
//! stage the tarball and the .deb.

use crate::cli::Cli;
use crate::error::{Error, Result};
use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Man pages: nats-rescue.1 and one nats-rescue-SUBCOMMAND.1 per subcommand
    Man(OutDir),
    /// Completion scripts for bash, zsh and fish (nats-rescue.bash, _nats-rescue, nats-rescue.fish)
    Completions(OutDir),
}

#[derive(Debug, Args)]
pub struct OutDir {
    /// Directory to write into (created if missing; existing files are replaced)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The shells a package installs completions for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

pub fn dispatch(c: &GenerateCommand) -> Result<i32> {
    let (dir, files) = match c {
        GenerateCommand::Man(o) => (&o.out, man(&o.out)?),
        GenerateCommand::Completions(o) => (&o.out, completions(&o.out)?),
    };
    eprintln!("wrote {} files into {}", files.len(), dir.display());
    Ok(0)
}

fn prepare(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Other(format!("cannot create {}: {e}", dir.display())))
}

/// Writes the pages; returns their paths.
pub fn man(dir: &Path) -> Result<Vec<PathBuf>> {
    prepare(dir)?;
    let mut cmd = without_help_subcommand(Cli::command());
    cmd.build();
    let mut out = Vec::new();
    write_pages(&cmd, dir, &mut out)?;
    Ok(out)
}

/// `nats-rescue help run` needs no page of its own: `nats-rescue-run(1)` is that page.
fn without_help_subcommand(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    names
        .into_iter()
        .fold(cmd.disable_help_subcommand(true), |c, n| {
            c.mut_subcommand(n, without_help_subcommand)
        })
}

fn write_pages(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, out)?;
    }
    let page = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(page.get_filename());
    let mut buf = Vec::new();
    page.render(&mut buf)
        .and_then(|()| std::fs::write(&path, buf))
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
    out.push(path);
    Ok(())
}

/// Writes one script per shell in [`SHELLS`]; returns their paths.
pub fn completions(dir: &Path) -> Result<Vec<PathBuf>> {
    prepare(dir)?;
    let mut cmd = Cli::command();
    SHELLS
        .iter()
        .map(|&sh| {
            clap_complete::generate_to(sh, &mut cmd, "nats-rescue", dir).map_err(|e| {
                Error::Other(format!(
                    "cannot write the {sh} completions into {}: {e}",
                    dir.display()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_visible_subcommand_and_not_generate() {
        let dir = tempfile::tempdir().expect("test setup");
        let files = man(dir.path()).expect("test setup");
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect();
        for n in [
            "nats-rescue.1",
            "nats-rescue-status.1",
            "nats-rescue-run.1",
            "nats-rescue-journal-export.1",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|x| x.contains("generate") || x.contains("help")),
            "{names:?}"
        );
        let root = std::fs::read_to_string(dir.path().join("nats-rescue.1")).expect("test setup");
        assert!(root.starts_with(".ie \\n(.g .ds Aq"), "{root}");
        assert!(root.contains("\\-\\-inventory"), "{root}");
        assert!(
            root.contains("Exit codes"),
            "the exit codes from after_help: {root}"
        );
    }

    #[test]
    fn completions_for_three_shells_name_the_subcommands() {
        let dir = tempfile::tempdir().expect("test setup");
        let files = completions(dir.path()).expect("test setup");
        assert_eq!(files.len(), 3, "{files:?}");
        for f in ["nats-rescue.bash", "_nats-rescue", "nats-rescue.fish"] {
            let s = std::fs::read_to_string(dir.path().join(f)).expect("test setup");
            assert!(s.contains("diagnose") && s.contains("journal"), "{f}: {s}");
        }
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("test setup");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").expect("test setup");
        let e = man(&file.join("sub")).expect_err("must fail").to_string();
        assert!(
            e.starts_with("cannot create ") && e.contains("a-file/sub"),
            "{e}"
        );
    }
}
