//! The crate's modules form a graph without cycles, apart from the ones named in
//! `ALLOWED_CYCLES`, so that each layer can be read, tested and changed knowing only the
//! layers below it (ARCHITECTURE.md's code map).
//!
//! A node is a top-level module of `src/`, except inside `query/`, where each file (or
//! folder) is a node of its own: the planner, operators, driver and statements are layered
//! too. An edge is any path in code that names another node (`use crate::x`, `crate::x::y`,
//! `super::x`, a child module by name). Test-only code (`#[cfg(test)]`) is left out: a
//! test may reach across layers to build its fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges that may close a cycle, each with the reason it is allowed. The checker takes
/// them out of the graph and then wants no cycle at all; an entry whose edge no longer
/// closes a cycle must go.
const ALLOWED_BACK_EDGES: &[(&str, &str, &str)] = &[
    // A SELECT with a subquery runs the inner SELECT through the driver: the recursion is
    // the language's, not a layering mistake.
    ("query::subquery", "query::select", "select <-> subquery"),
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Rust source as identifiers, `::` and punctuation, without comments, strings, chars,
/// lifetimes and numbers, which never name a module.
fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if (c == 'r' || c == 'b')
            && matches!(next, Some('"') | Some('#') | Some('r'))
            && raw_string_start(&chars, i).is_some()
        {
            let (hashes, body) = raw_string_start(&chars, i).unwrap_or((0, i));
            i = body;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a), which is skipped.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // `b'x'` and `b"..."` are byte literals, not the identifier `b`.
            if word == "b" && i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
                continue;
            }
            out.push(Token::Ident(word));
        } else if c == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// For `r"`, `r#"`, `br"`, `br#"` at `i`: the number of `#` and where the body starts.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// A file's module path from `src/`: `src/query/select.rs` is `query::select`,
/// `src/storage/mod.rs` is `storage`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

struct Module {
    path: Vec<String>,
    /// Brace depth at which the module's body opened (`None`: the file itself).
    depth: Option<usize>,
    test_only: bool,
    children: BTreeSet<String>,
}

struct Reference {
    target: Vec<String>,
    from: Vec<String>,
}

/// Every path in non-test code that starts at `crate`, `super`, `self` or a child
/// module, resolved to an absolute module path; and the child files declared test-only.
fn references(
    tokens: &[Token],
    file_path: Vec<String>,
    file_children: BTreeSet<String>,
) -> (Vec<Reference>, Vec<Vec<String>>) {
    let mut refs = Vec::new();
    let mut test_files = Vec::new();
    let mut stack = vec![Module {
        path: file_path,
        depth: None,
        test_only: false,
        children: file_children,
    }];
    let mut depth = 0usize;
    let mut cfg_test_pending = false;
    // Depths at which a `#[cfg(test)]` item's body opened.
    let mut test_regions: Vec<usize> = Vec::new();
    let ident = |k: usize| match tokens.get(k) {
        Some(Token::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let mut k = 0;
    while k < tokens.len() {
        let top = stack.len() - 1;
        let in_test = stack[top].test_only || !test_regions.is_empty() || cfg_test_pending;
        match &tokens[k] {
            Token::Punct('#')
                if tokens.get(k + 1) == Some(&Token::Punct('['))
                    && ident(k + 2) == Some("cfg")
                    && tokens.get(k + 3) == Some(&Token::Punct('('))
                    && ident(k + 4) == Some("test")
                    && tokens.get(k + 5) == Some(&Token::Punct(')')) =>
            {
                cfg_test_pending = true;
                k += 6;
                continue;
            }
            Token::Punct('{') => {
                if cfg_test_pending {
                    test_regions.push(depth);
                    cfg_test_pending = false;
                }
                depth += 1;
            }
            Token::Punct('}') => {
                depth -= 1;
                if test_regions.last() == Some(&depth) {
                    test_regions.pop();
                }
                if stack.last().and_then(|m| m.depth) == Some(depth) {
                    stack.pop();
                }
            }
            Token::Punct(';') => cfg_test_pending = false,
            Token::Ident(w)
                if w == "mod" && tokens.get(k.wrapping_sub(1)) != Some(&Token::PathSep) =>
            {
                if let Some(name) = ident(k + 1) {
                    let mut path = stack[top].path.clone();
                    path.push(name.to_string());
                    match tokens.get(k + 2) {
                        Some(Token::Punct('{')) => {
                            let test_only = in_test;
                            cfg_test_pending = false;
                            stack.push(Module {
                                path,
                                depth: Some(depth),
                                test_only,
                                children: BTreeSet::new(),
                            });
                            depth += 1;
                            k += 3;
                            continue;
                        }
                        Some(Token::Punct(';')) if in_test => test_files.push(path),
                        _ => {}
                    }
                }
            }
            Token::Ident(w) if tokens.get(k + 1) == Some(&Token::PathSep) => {
                let module = &stack[top];
                let starts_path = k == 0 || tokens[k - 1] != Token::PathSep;
                let base: Option<Vec<String>> = if !starts_path {
                    None
                } else if w == "crate" {
                    Some(Vec::new())
                } else if w == "self" {
                    Some(module.path.clone())
                } else if w == "super" {
                    let mut p = module.path.clone();
                    let mut j = k;
                    p.pop();
                    while ident(j + 2) == Some("super")
                        && tokens.get(j + 3) == Some(&Token::PathSep)
                    {
                        p.pop();
                        j += 2;
                    }
                    k = j;
                    Some(p)
                } else if module.children.contains(w) {
                    let mut p = module.path.clone();
                    p.push(w.clone());
                    Some(p)
                } else {
                    None
                };
                if let Some(base) = base {
                    let from = module.path.clone();
                    let end = collect_paths(tokens, k + 2, base, &mut |target| {
                        if !in_test {
                            refs.push(Reference {
                                target,
                                from: from.clone(),
                            })
                        }
                    });
                    k = end;
                    continue;
                }
            }
            _ => {}
        }
        k += 1;
    }
    (refs, test_files)
}

/// Reads a path (or `use` tree) after `prefix::`, reporting each full path; returns the
/// index after it.
fn collect_paths(
    tokens: &[Token],
    mut k: usize,
    mut prefix: Vec<String>,
    report: &mut dyn FnMut(Vec<String>),
) -> usize {
    loop {
        match tokens.get(k) {
            Some(Token::Ident(s)) if s != "self" => {
                prefix.push(s.clone());
                k += 1;
                if tokens.get(k) == Some(&Token::PathSep) {
                    k += 1;
                    continue;
                }
                report(prefix);
                return k;
            }
            Some(Token::Punct('{')) => {
                k += 1;
                loop {
                    match tokens.get(k) {
                        Some(Token::Punct('}')) => return k + 1,
                        Some(Token::Punct(',')) => k += 1,
                        Some(Token::Ident(s)) if s == "as" => k += 2,
                        None => return k,
                        _ => {
                            let before = k;
                            k = collect_paths(tokens, k, prefix.clone(), report);
                            if k == before {
                                k += 1;
                            }
                        }
                    }
                }
            }
            _ => {
                // `self`, `*` or the end of a path: the prefix itself is what is named.
                report(prefix);
                return k;
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The node a module path belongs to: its top-level module, or `query::<file>`.
fn node(path: &[String], src: &Path) -> Option<String> {
    let top = path.first()?;
    if top == "query" {
        if let Some(second) = path.get(1) {
            let sub = src.join("query");
            if sub.join(format!("{second}.rs")).exists() || sub.join(second).is_dir() {
                return Some(format!("query::{second}"));
            }
        }
    }
    Some(top.clone())
}

type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Edges between nodes, each with the first file that makes it.
fn dependency_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let mut parsed = Vec::new();
    let mut test_files: BTreeSet<Vec<String>> = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        let tokens = tokenize(&text);
        let children: BTreeSet<String> = tokens
            .windows(3)
            .filter_map(|w| match w {
                [Token::Ident(m), Token::Ident(name), Token::Punct(';')] if m == "mod" => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        let path = module_path(&src, file);
        let (refs, tests) = references(&tokens, path.clone(), children);
        test_files.extend(tests);
        parsed.push((file.clone(), path, refs));
    }
    let mut graph = Graph::new();
    for (file, path, refs) in parsed {
        if test_files.iter().any(|t| path.starts_with(t)) {
            continue;
        }
        let shown = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .display()
            .to_string();
        for r in refs {
            let (Some(from), Some(to)) = (node(&r.from, &src), node(&r.target, &src)) else {
                continue;
            };
            graph.entry(to.clone()).or_default();
            if from != to {
                graph
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("{shown}: {}", r.target.join("::")));
            }
        }
    }
    graph
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// A shortest path from `from` to `to` inside `within`, both ends included.
fn shortest_path(graph: &Graph, from: &str, to: &str, within: &BTreeSet<String>) -> Vec<String> {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            let mut path = vec![v];
            while let Some(p) = previous.get(path.last().expect("non-empty")) {
                path.push(p.clone());
            }
            path.reverse();
            return path;
        }
        for w in graph.get(&v).into_iter().flat_map(|e| e.keys()) {
            if within.contains(w) && w != from && !previous.contains_key(w) {
                previous.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    Vec::new()
}

/// Each edge of a component closed into a cycle by a shortest way back, one a line, with
/// the file that makes each edge.
fn describe(graph: &Graph, component: &BTreeSet<String>) -> String {
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    for from in component {
        for to in graph.get(from).into_iter().flat_map(|e| e.keys()) {
            if !component.contains(to) {
                continue;
            }
            let mut cycle = shortest_path(graph, to, from, component);
            cycle.insert(0, from.clone());
            // One rotation per cycle: starting at its least node.
            let open = &cycle[..cycle.len() - 1];
            let least = (0..open.len()).min_by_key(|&i| &open[i]).unwrap_or(0);
            let mut rotated: Vec<String> = open[least..]
                .iter()
                .chain(&open[..least])
                .cloned()
                .collect();
            rotated.push(rotated[0].clone());
            if seen.insert(rotated.clone()) {
                let steps: Vec<String> = rotated
                    .windows(2)
                    .map(|w| format!("{} -> {}  ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                    .collect();
                lines.push(format!("  cycle:\n    {}", steps.join("\n    ")));
            }
        }
    }
    lines.sort_by_key(|l| l.lines().count());
    lines.join("\n")
}

#[test]
fn modules_form_no_cycle_except_the_allowed_ones() {
    let graph = dependency_graph();
    let mut report = String::new();
    let mut pruned = graph.clone();
    for (from, to, name) in ALLOWED_BACK_EDGES {
        let closes_a_cycle = graph.get(*from).is_some_and(|e| e.contains_key(*to))
            && cycles(&graph)
                .iter()
                .any(|c| c.contains(*from) && c.contains(*to));
        if closes_a_cycle {
            println!("allowed ({name}): {from} -> {to}  ({})", graph[*from][*to]);
        } else {
            report.push_str(&format!(
                "{from} -> {to} ({name}) no longer closes a cycle: take it out of ALLOWED_BACK_EDGES\n"
            ));
        }
        if let Some(edges) = pruned.get_mut(*from) {
            edges.remove(*to);
        }
    }
    for component in cycles(&pruned) {
        report.push_str(&describe(&pruned, &component));
        report.push('\n');
    }
    assert!(report.is_empty(), "module dependency cycles:\n{report}");
}

/// The checker itself sees the kinds of reference the crate uses.
#[test]
fn references_are_found_in_use_trees_paths_and_child_modules() {
    let src = "
        mod child;
        use crate::{alpha::One, beta};
        use super::gamma::{self, Two};
        fn f() { crate::delta::call(); child::g(); let s = \"crate::not_code::x\"; }
        // crate::not_code::y
        #[cfg(test)]
        mod tests { use crate::test_only::X; }
    ";
    let tokens = tokenize(src);
    let children = BTreeSet::from(["child".to_string()]);
    let (refs, _) = references(&tokens, vec!["top".into(), "file".into()], children);
    let targets: BTreeSet<String> = refs.iter().map(|r| r.target.join("::")).collect();
    let expected: BTreeSet<String> = [
        "alpha::One",
        "beta",
        "top::gamma",
        "top::gamma::Two",
        "delta::call",
        "top::file::child::g",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(targets, expected);
}

/// ARCHITECTURE.md: the proxy reaches backends only through the client; nothing of a
/// node (its storage, catalog, control state, services, HTTP layer, queries) is in it.
#[test]
fn the_proxy_reaches_no_node_code() {
    let graph = dependency_graph();
    let mut reached = BTreeSet::new();
    let mut stack = vec!["proxy".to_string()];
    while let Some(v) = stack.pop() {
        for w in graph.get(&v).into_iter().flat_map(|e| e.keys()) {
            if reached.insert(w.clone()) {
                stack.push(w.clone());
            }
        }
    }
    let node_code = [
        "storage",
        "catalog",
        "control",
        "node",
        "http",
        "daemon",
        "backup",
        "replication",
        "auth",
    ];
    let wrong: Vec<&String> = reached
        .iter()
        .filter(|m| node_code.contains(&m.as_str()) || m.starts_with("query"))
        .collect();
    assert!(wrong.is_empty(), "the proxy reaches {wrong:?}: {reached:?}");
    assert!(
        reached.contains("client") && reached.contains("log"),
        "{reached:?}"
    );
}
