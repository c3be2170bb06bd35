//! The shared crate's layers, checked from its own source: every top-level
//! module (`domain`, `store`, `web`, ...) is a node, every `crate::<module>`
//! a module's files name is an edge, and the graph must have no cycle. The
//! lower layers must also stay free of what belongs above them: `domain` of
//! I/O (no AWS SDK, no axum, no tokio), `store` of HTTP (no axum, no `web`).
//!
//! Adding `use crate::web::...` to a store file, or any import that closes a
//! loop, fails here with the loop spelled out.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Module -> the modules its files name (`crate::x`), from the source tree.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let module = top_module(src, &file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let code = without_tests_and_comments(&text);
        let entry = graph.entry(module.clone()).or_default();
        for named in crate_references(&code) {
            if named != module {
                entry.insert(named);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/store/tenants.rs` -> `store`; `src/error.rs` -> `error`.
fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The source without `#[cfg(test)]` modules (they may reach anywhere) and
/// without comments (doc text names modules without importing them).
fn without_tests_and_comments(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every `x` in `crate::x`, and every `x` in `use crate::{x, y::z}`.
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the first segment of each item.
            let mut depth = 0;
            let mut item_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if item_start && !name.is_empty() => {
                        found.insert(std::mem::take(&mut name));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            // `crate::some_macro!` names a macro, not a module.
            let is_macro = rest[name.len()..].starts_with('!');
            if !name.is_empty() && !is_macro {
                found.insert(name);
            }
        }
    }
    found
}

/// A cycle of the graph, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_modules_of_the_shared_crate_form_no_cycle() {
    let graph = module_graph(&src());
    assert!(graph.contains_key("domain") && graph.contains_key("store") && graph.contains_key("web"), "{graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}\nthe whole graph: {graph:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_layers_only_look_down() {
    let graph = module_graph(&src());
    // What each layer may name; anything else is a layering defect.
    let allowed: &[(&str, &[&str])] = &[
        ("error", &[]),
        ("events", &["config", "error"]),
        ("domain", &["error", "events", "request_id"]),
        ("auth", &["config", "domain", "error", "events"]),
        ("store", &["auth", "blobs", "config", "domain", "error", "events", "sealing"]),
    ];
    for (layer, may_name) in allowed {
        let names = graph.get(*layer).cloned().unwrap_or_default();
        let stray: Vec<&String> = names.iter().filter(|n| !may_name.contains(&n.as_str())).collect();
        assert!(stray.is_empty(), "`{layer}` names {stray:?}; it may only name {may_name:?}");
    }
}

#[test]
fn the_domain_does_no_io() {
    let dir = src().join("domain");
    for file in rust_files(&dir) {
        let code = without_tests_and_comments(&std::fs::read_to_string(&file).unwrap_or_default());
        for io in ["aws_sdk_", "axum", "tokio", "lambda_http", "reqwest"] {
            assert!(!code.contains(io), "{} uses {io}: the domain layer does no I/O", file.display());
        }
    }
}

#[test]
fn the_store_knows_nothing_of_http() {
    for file in rust_files(&src().join("store")) {
        let code = without_tests_and_comments(&std::fs::read_to_string(&file).unwrap_or_default());
        for web in ["axum", "lambda_http"] {
            assert!(!code.contains(web), "{} uses {web}: the store layer is below the web", file.display());
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("web", vec!["store"]), ("store", vec!["domain"]), ("domain", vec!["error"]), ("error", vec!["web"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 5, "{cycle:?}");
    let mut acyclic = graph.clone();
    acyclic.insert("error".into(), BTreeSet::new());
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn crate_references_read_plain_and_grouped_paths() {
    let code = "use crate::{auth::TenantScope, error::{AppError, AppResult}, store};\nlet x = crate::domain::now();";
    let found: Vec<String> = crate_references(code).into_iter().collect();
    assert_eq!(found, ["auth", "domain", "error", "store"]);
}
