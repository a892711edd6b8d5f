//! The layout holds: no module of the service imports one that imports it back, directly or
//! through others. Read from the source: every `crate::…` and `super::…` path in a file of
//! `src/` (its test module left out) is an edge to the file of the module it names; the edges
//! must form no cycle. Cycles between crates cannot happen (Cargo refuses them). And the
//! simulated foundation stays out of the service: only `promfetcher dev` names it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["fanout", "gzip"]`) of every `.rs` file under `src/` but the binary's.
fn module_files(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut files = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("src/ is readable").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(src).expect("below src/");
            let Some(name) = relative.to_str().and_then(|r| r.strip_suffix(".rs")) else {
                continue;
            };
            if name == "main" || name.ends_with("tests") {
                continue;
            }
            let mut module: Vec<String> = name.split('/').map(str::to_string).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            files.insert(module, path);
        }
    }
    files
}

/// The code of a file without its `#[cfg(test)]` module and without comments.
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file is readable");
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path the code names through `crate::` or `super::` (relative to `module`,
/// the module whose file it is), groups `{a, b}` expanded.
fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("::") {
        let head_start = code[..at]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let head = &code[head_start..at];
        let base: Vec<String> = match head {
            "crate" => Vec::new(),
            "super" if code[..head_start].ends_with("::") => continue,
            "super" => {
                // `super::super::` goes up twice.
                let up = 1 + code[at + 2..]
                    .split("::")
                    .take_while(|part| *part == "super")
                    .count();
                module[..module.len().saturating_sub(up)].to_vec()
            }
            _ => continue,
        };
        let rest = &code[at + 2..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let mut path = base.clone();
        path.extend(
            rest[..end]
                .split("::")
                .filter(|s| !s.is_empty() && *s != "super")
                .map(str::to_string),
        );
        if rest[end..].starts_with('{') {
            let group = &rest[end + 1..rest[end..].find('}').map_or(end + 1, |i| end + i)];
            for item in group.split(',') {
                let item = item.trim().split("::").next().unwrap_or_default();
                if !item.is_empty() && item != "self" {
                    let mut member = path.clone();
                    member.push(item.to_string());
                    paths.push(member);
                }
            }
        }
        paths.push(path);
    }
    paths
}

/// The longest prefix of `path` that is a module with a file.
fn file_of<'a>(
    path: &[String],
    files: &'a BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'a Vec<String>> {
    (0..=path.len())
        .rev()
        .find_map(|len| files.get_key_value(&path[..len]).map(|(key, _)| key))
}

/// A cycle in `edges`, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        done: &mut BTreeSet<Vec<String>>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|m| m.join("::")).collect();
            cycle.push(node.join("::"));
            return Some(cycle);
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn no_module_of_the_service_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = module_files(&src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &files {
        for named in named_paths(&production_code(path), module) {
            // A module's own items and its ancestors' re-exports of it are not imports of
            // another module.
            if let Some(target) = file_of(&named, &files) {
                if target != module && !module.starts_with(target) {
                    edges
                        .entry(module.clone())
                        .or_default()
                        .insert(target.clone());
                }
            }
        }
    }
    assert!(
        edges.len() > 20,
        "the reading of src/ found too few imports to be right: {edges:?}"
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn only_promfetcher_dev_uses_the_simulated_foundation() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let users: Vec<Vec<String>> = module_files(&src)
        .into_iter()
        .filter(|(_, path)| production_code(path).contains("simulated_foundation"))
        .map(|(module, _)| module)
        .collect();
    assert_eq!(users, [vec!["server".to_string(), "dev_mode".to_string()]]);
}
