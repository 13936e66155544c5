//! Embeds every `runbooks/*.yaml` in the binary (built-in runbooks).
use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=runbooks");
    let dir = std::path::Path::new("runbooks");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(std::result::Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// (file name, text) of every built-in runbook.\npub static BUILTIN: &[(&str, &str)] = &[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let abs = std::fs::canonicalize(&f).unwrap_or(f.clone());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("builtin_runbooks.rs");
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("cannot write builtin_runbooks.rs: {e}"));
}
