//! ARCHITECTURE.md's layout rules as tests that fail on a violation:
//! the pure folders (`core/`, `values/`, `views/`) name no I/O, no clock and
//! nothing of the shell or the adapters, and no two files import each other,
//! however long the way round. Each rule is first shown to catch a planted
//! violation, so the test cannot pass by seeing nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Folders whose files must do no I/O and read no clock.
const PURE_FOLDERS: [&str; 3] = ["core", "values", "views"];

/// Paths (after `use` trees are expanded) that mean I/O, a clock, or a layer
/// the pure code must not reach.
const FORBIDDEN_PATHS: [&str; 23] = [
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::thread",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "std::os",
    "std::time::SystemTime",
    "std::time::Instant",
    "rusqlite",
    "mysql",
    "lettre",
    "libc",
    "tempfile",
    "refinery",
    "crate::adapters",
    "crate::commands",
    "crate::config",
    "crate::cli",
    "crate::exit",
    "crate::main",
];

/// Names that read a clock or touch the world however they were imported.
/// (`now` is allowed as a parameter's name; `X::now()` is the clock.)
const FORBIDDEN_NAMES: [&str; 11] = [
    "stdin",
    "stdout",
    "stderr",
    "SystemTime",
    "Instant",
    "File",
    "OpenOptions",
    "Command",
    "TcpStream",
    "UnixStream",
    "sleep",
];

/// Macros that write to the terminal.
const FORBIDDEN_MACROS: [&str; 5] = ["println", "eprintln", "print", "eprint", "dbg"];

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Punct(char),
}

/// Rust source → identifiers and punctuation; comments, strings, char
/// literals and numbers are dropped (a path in a doc comment is no import).
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
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
        } else if c == 'r' && (next == Some('"') || (next == Some('#') && raw_string_start(&chars, i + 1))) {
            // r"..." or r#"..."#
            let mut hashes = 0;
            i += 1;
            while chars.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
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
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

fn raw_string_start(chars: &[char], mut i: usize) -> bool {
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach
/// further than the code they test, e.g. a fixture's config).
fn without_tests(source: &str) -> &str {
    source.find("\n#[cfg(test)]").map_or(source, |at| &source[..at])
}

// ---------------------------------------------------------------- paths

/// Every path the tokens name, with `use` trees expanded:
/// `use std::{fs, io::Write}` gives `std::fs` and `std::io::Write`.
fn paths(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // A path starts at a name followed by `::` that does not itself follow
        // `name::` (a leading `::`, as in `::std::fs`, starts one too).
        let continues =
            i >= 2 && is_sep(tokens, i - 2) && matches!(tokens.get(i.wrapping_sub(3)), Some(Token::Ident(_)));
        let starts_path = matches!(&tokens[i], Token::Ident(_)) && is_sep(tokens, i + 1) && !continues;
        if starts_path {
            let (trees, end) = tree(tokens, i);
            out.extend(trees);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn is_sep(tokens: &[Token], i: usize) -> bool {
    tokens.get(i) == Some(&Token::Punct(':')) && tokens.get(i + 1) == Some(&Token::Punct(':'))
}

/// Parses a path or a use tree starting at `i`; returns the expanded paths
/// and the index after it.
fn tree(tokens: &[Token], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        match tokens.get(i) {
            Some(Token::Ident(name)) => {
                prefix.push(name.clone());
                i += 1;
                if !is_sep(tokens, i) {
                    return (vec![prefix], i);
                }
                i += 2;
            }
            Some(Token::Punct('{')) => {
                i += 1;
                let mut all = Vec::new();
                while i < tokens.len() && tokens[i] != Token::Punct('}') {
                    if tokens[i] == Token::Punct(',') {
                        i += 1;
                        continue;
                    }
                    let (subtrees, end) = tree(tokens, i);
                    for sub in subtrees {
                        let mut full = prefix.clone();
                        full.extend(sub.into_iter().filter(|s| s != "self"));
                        all.push(full);
                    }
                    // Skip `as alias` and anything else up to the next item.
                    i = end.max(i + 1);
                    while i < tokens.len() && tokens[i] != Token::Punct(',') && tokens[i] != Token::Punct('}') {
                        i += 1;
                    }
                }
                return (all, i + 1);
            }
            // `*` or the end of the path.
            _ => return (vec![prefix], i + 1),
        }
    }
}

// ---------------------------------------------------------------- the crate

struct Module {
    /// `["core", "policy"]` for `src/core/policy.rs`; `[]` for `lib.rs`.
    path: Vec<String>,
    code: String,
}

fn crate_modules(src: &Path, files: &[(PathBuf, String)]) -> Vec<Module> {
    files
        .iter()
        .filter(|(file, _)| file != &src.join("main.rs"))
        .map(|(file, text)| {
            let relative = file.strip_prefix(src).unwrap_or(file);
            let mut path: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
                path.pop();
            }
            Module {
                path,
                code: without_tests(text).to_string(),
            }
        })
        .collect()
}

/// The file a path lands in: the longest prefix of it that is a module.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let (mut base, rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (from.to_vec(), &path[1..]),
        Some("super") => {
            let mut base = from.to_vec();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        // A child module named without `self::` (e.g. `run::grant` in commands/mod.rs).
        Some(first) if modules.contains(&[from, &[first.to_string()]].concat()) => (from.to_vec(), path),
        _ => return None,
    };
    let mut found = base.clone();
    for segment in rest {
        base.push(segment.clone());
        if modules.contains(&base) {
            found = base.clone();
        } else {
            break;
        }
    }
    Some(found)
}

/// For each module, the modules it names (itself left out).
fn imports(modules: &[Module]) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    modules
        .iter()
        .map(|m| {
            let targets = paths(&tokens(&m.code))
                .iter()
                .filter_map(|p| resolve(&m.path, p, &known))
                .filter(|t| t != &m.path)
                .collect();
            (m.path.clone(), targets)
        })
        .collect()
}

/// A circle of imports, as the files on it, if there is one.
fn find_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        marks.insert(node.clone(), Mark::OnPath);
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let start = path.iter().position(|p| p == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, graph, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// What a pure file must not name: one line per finding.
fn impurities(code: &str) -> Vec<String> {
    let tokens = tokens(code);
    let mut found = Vec::new();
    for path in paths(&tokens) {
        let joined = path.join("::");
        if let Some(bad) = FORBIDDEN_PATHS
            .iter()
            .find(|bad| joined == **bad || joined.starts_with(&format!("{bad}::")))
        {
            found.push(format!("names `{joined}` ({bad})"));
        }
    }
    for (i, token) in tokens.iter().enumerate() {
        if let Token::Ident(name) = token {
            let is_macro = tokens.get(i + 1) == Some(&Token::Punct('!'));
            if FORBIDDEN_NAMES.contains(&name.as_str()) && !is_macro {
                found.push(format!("names `{name}`"));
            }
            if name == "now" && i >= 2 && is_sep(&tokens, i - 2) && tokens.get(i + 1) == Some(&Token::Punct('(')) {
                found.push("reads the clock with `now()`".to_string());
            }
            if is_macro && FORBIDDEN_MACROS.contains(&name.as_str()) {
                found.push(format!("writes to the terminal with `{name}!`"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn rust_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path, text));
        }
    }
}

fn src() -> (PathBuf, Vec<(PathBuf, String)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    (src, files)
}

fn shown(cycle: &[Vec<String>]) -> String {
    cycle
        .iter()
        .map(|m| if m.is_empty() { "lib".to_string() } else { m.join("/") })
        .collect::<Vec<_>>()
        .join(" -> ")
}

// ---------------------------------------------------------------- the tests

#[test]
fn the_pure_folders_name_no_io_no_clock_and_no_shell() {
    let (src, files) = src();
    let mut checked = 0;
    let mut problems = Vec::new();
    for (file, text) in &files {
        let relative = file.strip_prefix(&src).unwrap_or(file);
        let folder = relative.iter().next().map(|s| s.to_string_lossy().into_owned());
        if !folder.is_some_and(|f| PURE_FOLDERS.contains(&f.as_str())) {
            continue;
        }
        checked += 1;
        // The whole file, its unit tests included: they run the pure code as it is.
        for problem in impurities(text) {
            problems.push(format!("src/{}: {problem}", relative.display()));
        }
    }
    assert!(
        checked >= 20,
        "only {checked} files in {PURE_FOLDERS:?}: has the layout moved?"
    );
    assert!(
        problems.is_empty(),
        "the pure folders must do no I/O and read no clock (ARCHITECTURE.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_file_imports_another_that_imports_it_back() {
    let (src, files) = src();
    let modules = crate_modules(&src, &files);
    let graph = imports(&modules);
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(
        edges > 100,
        "only {edges} imports found: is the scanner reading the tree?"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("a circle of imports: {}", shown(&cycle));
    }
}

#[test]
fn every_file_is_in_the_code_map() {
    let (src, files) = src();
    let map = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md");
    let missing: Vec<String> = files
        .iter()
        .map(|(file, _)| file.strip_prefix(&src).unwrap_or(file).display().to_string())
        .filter(|relative| !map.contains(&format!("`{relative}`")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map lacks: {missing:?}");
}

// The checkers themselves, on planted violations.

#[test]
fn the_purity_check_catches_io_and_clocks_however_imported() {
    for (code, expected) in [
        ("use std::{fs, io::Write};", "std::fs"),
        ("use std::process::Command as Run;", "std::process"),
        ("fn f() { let _ = std::env::var(\"TZ\"); }", "std::env"),
        ("fn f() -> i64 { chrono::Utc::now().timestamp() }", "`now()`"),
        ("use chrono::{Local, Utc}; fn f() { Local::now(); }", "`now()`"),
        ("fn f(c: &rusqlite::Connection) {}", "rusqlite"),
        ("use crate::{config::Config, core::policy};", "crate::config"),
        ("fn f() { println!(\"hi\"); }", "println!"),
        ("use std::time::{Duration, Instant};", "Instant"),
        ("fn f() { ::std::process::exit(1) }", "std::process"),
        ("use std::io; fn f() { io::stdout(); }", "`stdout`"),
    ] {
        let found = impurities(code).join("; ");
        assert!(
            found.contains(expected),
            "{code:?} gave {found:?}, expected {expected:?}"
        );
    }
    for clean in [
        "// std::fs::read in a comment\nfn f() {}",
        "/// reads `std::process` docs\nfn f() -> &'static str { \"std::fs in a string\" }",
        "use std::collections::BTreeMap; use chrono::NaiveDate; fn f<'a>(x: &'a str) -> char { 'x' }",
        "fn plan(now: DateTime<Utc>) -> DateTime<Utc> { now }",
        "fn g() -> String { r#\"Utc::now() \"quoted\"\"#.to_string() }",
    ] {
        assert_eq!(impurities(clean), Vec::<String>::new(), "{clean:?}");
    }
}

#[test]
fn the_circle_check_finds_a_way_round_through_use_trees_and_super() {
    let module = |path: &[&str], code: &str| Module {
        path: path.iter().map(|s| s.to_string()).collect(),
        code: code.to_string(),
    };
    let tree = [
        module(&[], "pub mod a; pub mod b; pub mod c;"),
        module(&["a"], "use crate::{b::{self, B}, c::C};"),
        module(&["b"], "pub struct B; fn f() { crate::c::helper(); }"),
        module(&["c"], "use super::a::A; pub struct C;"),
    ];
    let graph = imports(&tree);
    let cycle = find_cycle(&graph).map(|c| shown(&c));
    assert_eq!(cycle.as_deref(), Some("a -> b -> c -> a"));

    // A folder's mod.rs that calls its children, and children that only call siblings.
    let fine = [
        module(&["cmd"], "mod ctx; mod run; pub fn go() { run::run(); }"),
        module(&["cmd", "ctx"], "pub struct Ctx;"),
        module(&["cmd", "run"], "use super::ctx::Ctx; pub fn run() {}"),
    ];
    assert_eq!(find_cycle(&imports(&fine)), None);
    // ...and a child that names its parent's item closes a circle.
    let back = [
        module(&["cmd"], "mod run; pub struct Ctx; pub fn go() { run::run(); }"),
        module(&["cmd", "run"], "use super::Ctx; pub fn run() {}"),
    ];
    assert_eq!(
        find_cycle(&imports(&back)).map(|c| shown(&c)).as_deref(),
        Some("cmd -> cmd/run -> cmd")
    );
}
