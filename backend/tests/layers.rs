//! The backend's modules form layers: `lib.rs` declares them in order, and each may use only
//! the modules declared before it. No cycle, so each layer can be read, tested and changed
//! knowing only those below it (the `Guide` contract never names the engine; the engine
//! never names the fit loop).

use std::collections::BTreeSet;
use std::path::Path;

/// The modules `lib.rs` declares, in order.
fn declared(src: &Path) -> Vec<String> {
    std::fs::read_to_string(src.join("lib.rs"))
        .expect("lib.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// The source of a module: its file, or every file of its folder.
fn source(src: &Path, module: &str) -> String {
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        return std::fs::read_to_string(file).expect("readable");
    }
    let mut out = String::new();
    let mut stack = vec![src.join(module)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a module folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out += &std::fs::read_to_string(path).expect("readable");
            }
        }
    }
    out
}

/// The crate modules a module's code (not its comments) names.
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = declared(&src);
    assert!(order.len() > 20, "lib.rs declares {order:?}");
    let mut wrong = Vec::new();
    for (at, module) in order.iter().enumerate() {
        for used in uses(&source(&src, module)) {
            match order.iter().position(|m| *m == used) {
                Some(p) if p > at => {
                    wrong.push(format!("`{module}` uses `{used}`, declared after it"))
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
