//! Embeds every `rules/*.rules` file in the binary, so the built-in library needs no
//! files at run time and a new rule file is picked up without touching Rust code.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=rules");
    let mut files: Vec<_> = std::fs::read_dir("rules")
        .expect("rules/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    let mut code = String::from("/// The built-in rule files: (theme, file name, contents).\npub const BUILTIN_RULE_FILES: &[(&str, &str, &str)] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let theme = path.file_stem().unwrap().to_string_lossy();
        let name = path.file_name().unwrap().to_string_lossy();
        let abs = std::fs::canonicalize(&path).unwrap();
        writeln!(code, "    ({theme:?}, {name:?}, include_str!({:?})),", abs.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_rules.rs");
    std::fs::write(out, code).unwrap();
}
