//! The direction of dependencies, read from the source of every crate of the workspace.
//!
//! Every `crate::`, `self::` and `super::` path in non-test code (in `use` items and inline,
//! parsed with `syn`) is an edge from the module it is written in to the module it names. Two
//! rules hold them:
//!
//! - **No circles**: the modules of a crate, with these edges, form no cycle. A module's own
//!   submodules may reach up into it (that is what Rust's privacy gives them); any other way
//!   back is a circle.
//! - **Layers** (the core crate, `tollgate`): `domain` depends on nothing else; `ports` on
//!   `domain`; `app` on `ports` and `domain`; `adapters` on `ports` and `domain`; `edge` on all
//!   of these; `testing` on everything but `edge`; and nothing outside `testing` on `testing`.
//!
//! `LAYERING_ROOT=<a checkout>` runs the same check on another tree (the note of the issue
//! that introduced this test runs it on the commit before the regrouping).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// What each layer of the core may depend on (besides itself).
const LAYERS: [(&str, &[&str]); 6] = [
    ("domain", &[]),
    ("ports", &["domain"]),
    ("app", &["domain", "ports"]),
    ("adapters", &["domain", "ports"]),
    ("edge", &["domain", "ports", "app", "adapters"]),
    ("testing", &["domain", "ports", "app", "adapters"]),
];

type ModulePath = Vec<String>;

/// One crate's modules and the edges between them.
#[derive(Default)]
struct Crate {
    name: String,
    /// Every module, with the file it lives in.
    modules: BTreeMap<ModulePath, PathBuf>,
    /// `from -> to`, with one place each edge is written.
    edges: BTreeMap<(ModulePath, ModulePath), String>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && {
            let tokens = attr.meta.require_list().map(|l| l.tokens.to_string()).unwrap_or_default();
            tokens == "test"
        }
    }) || attrs.iter().any(|attr| attr.path().is_ident("test"))
}

/// The paths one module's file writes, and its inline and file submodules.
struct Reader {
    module: ModulePath,
    paths: Vec<(ModulePath, ModulePath, usize)>,
    submodules: Vec<(ModulePath, Option<String>)>,
}

impl Reader {
    fn record(&mut self, segments: Vec<String>, line: usize) {
        let Some(first) = segments.first() else { return };
        let resolved = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "self" => self.module.iter().cloned().chain(segments[1..].iter().cloned()).collect(),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let keep = self.module.len().saturating_sub(ups);
                self.module[..keep].iter().cloned().chain(segments[ups..].iter().cloned()).collect()
            }
            _ => return,
        };
        self.paths.push((self.module.clone(), resolved, line));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, line: usize) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, line);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.record(full, line);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.record(full, line);
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone(), line),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, line);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let mut path = self.module.clone();
        path.push(m.ident.to_string());
        let explicit = m.attrs.iter().find(|a| a.path().is_ident("path")).and_then(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        });
        match &m.content {
            Some((_, items)) => {
                self.submodules.push((path.clone(), Some(String::new())));
                let outer = std::mem::replace(&mut self.module, path);
                for item in items {
                    self.visit_item(item);
                }
                self.module = outer;
            }
            None => self.submodules.push((path, explicit)),
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let line = u.use_token.span.start().line;
        self.use_tree(&mut Vec::new(), &u.tree, line);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p.segments.first().map_or(0, |s| s.ident.span().start().line);
        self.record(segments, line);
        syn::visit::visit_path(self, p);
    }
}

/// The file of submodule `name` declared in `file` (for a module at `file`).
fn submodule_file(file: &Path, is_dir_owner: bool, name: &str) -> Option<PathBuf> {
    let dir = if is_dir_owner { file.parent()?.to_path_buf() } else { file.parent()?.join(file.file_stem()?) };
    [dir.join(format!("{name}.rs")), dir.join(name).join("mod.rs")].into_iter().find(|p| p.exists())
}

/// Reads a crate from its root file(s), following `mod` declarations.
fn read_crate(name: &str, roots: &[PathBuf]) -> Crate {
    let mut krate = Crate { name: name.to_owned(), ..Crate::default() };
    let mut raw_paths = Vec::new();
    let mut queue: Vec<(ModulePath, PathBuf, bool)> = roots.iter().map(|r| (Vec::new(), r.clone(), true)).collect();
    while let Some((module, file, dir_owner)) = queue.pop() {
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ast = syn::parse_file(&source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        krate.modules.insert(module.clone(), file.clone());
        let mut reader = Reader { module: module.clone(), paths: Vec::new(), submodules: Vec::new() };
        reader.visit_file(&ast);
        for (path, line) in reader.paths.iter().map(|(from, to, line)| ((from.clone(), to.clone()), *line)) {
            raw_paths.push((path, format!("{}:{line}", file.display())));
        }
        for (sub, explicit) in reader.submodules {
            match explicit {
                Some(inline) if inline.is_empty() => {
                    krate.modules.insert(sub, file.clone());
                }
                Some(custom) => {
                    let target = file.parent().expect("a file has a folder").join(custom);
                    queue.push((sub, target, false));
                }
                None => {
                    let name = sub.last().expect("a submodule has a name").clone();
                    if let Some(target) = submodule_file(&file, dir_owner, &name) {
                        let owner = target.file_name().is_some_and(|n| n == "mod.rs");
                        queue.push((sub, target, owner));
                    }
                }
            }
        }
    }
    for ((from, to), at) in raw_paths {
        // The module a path names: the longest known module it starts with.
        let target = (0..=to.len()).rev().map(|n| to[..n].to_vec()).find(|m| krate.modules.contains_key(m));
        let Some(target) = target else { continue };
        // A module reaching into itself or up into an enclosing module is no edge.
        if from.starts_with(&target) {
            continue;
        }
        krate.edges.entry((from, target)).or_insert(at);
    }
    krate
}

fn show(module: &ModulePath) -> String {
    if module.is_empty() { "crate".to_owned() } else { module.join("::") }
}

/// Every cycle among a crate's modules (one per strongly connected component), as the
/// modules in it and the edges that close it.
fn cycles(krate: &Crate) -> Vec<String> {
    let nodes: Vec<&ModulePath> = krate.modules.keys().collect();
    let index: BTreeMap<&ModulePath, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (from, to) in krate.edges.keys() {
        next[index[from]].push(index[to]);
    }
    // Tarjan's strongly connected components.
    struct State {
        counter: usize,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        components: Vec<Vec<usize>>,
    }
    fn connect(v: usize, next: &[Vec<usize>], s: &mut State) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &next[v] {
            match s.index[w] {
                None => {
                    connect(w, next, s);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.components.push(component);
            }
        }
    }
    let n = nodes.len();
    let mut state = State {
        counter: 0,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        components: Vec::new(),
    };
    for v in 0..n {
        if state.index[v].is_none() {
            connect(v, &next, &mut state);
        }
    }
    state
        .components
        .into_iter()
        .map(|component| {
            let members: BTreeSet<&ModulePath> = component.iter().map(|&i| nodes[i]).collect();
            let inside: Vec<String> = krate
                .edges
                .iter()
                .filter(|((from, to), _)| members.contains(from) && members.contains(to))
                .map(|((from, to), at)| format!("{} -> {} ({at})", show(from), show(to)))
                .collect();
            format!("{}: a circle through {}", krate.name, inside.join(", "))
        })
        .collect()
}

/// Edges of the core that go against its layers.
fn layer_violations(krate: &Crate) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.into_iter().collect();
    krate
        .edges
        .iter()
        .filter_map(|((from, to), at)| {
            let (Some(from_layer), Some(to_layer)) = (from.first(), to.first()) else { return None };
            if from_layer == to_layer {
                return None;
            }
            let may = allowed.get(from_layer.as_str())?;
            (!may.contains(&to_layer.as_str()))
                .then(|| format!("{}: {} -> {} goes against the layers ({at})", krate.name, show(from), show(to)))
        })
        .collect()
}

/// Every crate of the workspace under `root`, from its `Cargo.toml` members, with its root files.
fn workspace_crates(root: &Path) -> Vec<Crate> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("the workspace manifest");
    let members: Vec<String> = manifest
        .split("members")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .map(|list| list.split('"').skip(1).step_by(2).map(str::to_owned).collect())
        .expect("the workspace lists its members");
    let mut crates = Vec::new();
    for member in members {
        let src = root.join(&member).join("src");
        for root_file in ["lib.rs", "main.rs"] {
            let file = src.join(root_file);
            if file.exists() {
                crates.push(read_crate(&format!("{member} ({root_file})"), &[file]));
            }
        }
    }
    crates
}

fn repository_root() -> PathBuf {
    std::env::var_os("LAYERING_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the repository").into())
}

#[test]
fn no_crate_of_the_workspace_has_a_circle_of_modules() {
    let crates = workspace_crates(&repository_root());
    assert!(crates.len() >= 12, "every crate is read: {}", crates.len());

    let found: Vec<String> = crates.iter().flat_map(cycles).collect();

    assert!(found.is_empty(), "module circles:\n{}", found.join("\n"));
}

#[test]
fn the_core_depends_down_its_layers_only() {
    let root = repository_root();
    let core = read_crate("shared", &[root.join("shared/src/lib.rs")]);
    let layers: BTreeSet<&str> = core.modules.keys().filter_map(|m| m.first()).map(String::as_str).collect();
    assert_eq!(layers, LAYERS.iter().map(|(l, _)| *l).collect(), "the core's root holds the layers and nothing else");

    let found = layer_violations(&core);

    assert!(found.is_empty(), "edges against the layers:\n{}", found.join("\n"));
}

/// A throwaway crate written to a temporary folder.
fn scratch_crate(files: &[(&str, &str)]) -> (tempdir::Dir, Crate) {
    let dir = tempdir::Dir::new();
    for (name, source) in files {
        let path = dir.0.join(name);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the folder");
        std::fs::write(&path, source).expect("write the file");
    }
    let krate = read_crate("scratch", &[dir.0.join("lib.rs")]);
    (dir, krate)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("tollgate-layering-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("create a temporary folder");
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn a_circle_through_an_inline_path_is_found() {
    let (_dir, krate) = scratch_crate(&[
        ("lib.rs", "pub mod domain;\n"),
        ("domain/mod.rs", "pub mod credits;\npub mod plans;\n"),
        ("domain/credits.rs", "pub struct Pack;\npub fn grant(_: &crate::domain::plans::Plan) {}\n"),
        ("domain/plans.rs", "use super::credits::Pack;\npub struct Plan(pub Pack);\n"),
    ]);

    let found = cycles(&krate);

    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("domain::credits -> domain::plans"), "{found:?}");
    assert!(found[0].contains("domain::plans -> domain::credits"), "{found:?}");
}

#[test]
fn a_port_naming_a_use_case_goes_against_the_layers() {
    let (_dir, krate) = scratch_crate(&[
        ("lib.rs", "pub mod app;\npub mod ports;\n"),
        ("app/mod.rs", "pub mod meters;\n"),
        ("app/meters.rs", "pub struct MeterOutcome;\npub fn run(_: &dyn crate::ports::Store) {}\n"),
        (
            "ports/mod.rs",
            "pub trait Store {}\npub struct SyncOutcome { pub meters: crate::app::meters::MeterOutcome }\n",
        ),
    ]);

    let circles = cycles(&krate);
    let against = layer_violations(&krate);

    assert_eq!(circles.len(), 1, "{circles:?}");
    assert_eq!(against.len(), 1, "{against:?}");
    assert!(against[0].contains("ports -> app::meters"), "{against:?}");
}

#[test]
fn test_code_and_a_submodule_reaching_up_are_no_edges() {
    let (_dir, krate) = scratch_crate(&[
        ("lib.rs", "pub mod domain;\npub mod testing;\n"),
        ("domain/mod.rs", "mod helper;\npub fn rule() { helper::help() }\nfn shared() {}\n"),
        ("domain/helper.rs", "pub fn help() { super::shared() }\n"),
        ("testing.rs", "pub fn projection() {}\n"),
        ("domain/tests.rs", ""),
    ]);
    let (_dir2, with_test) = scratch_crate(&[
        ("lib.rs", "pub mod domain;\npub mod testing;\n"),
        ("domain.rs", "#[cfg(test)]\nmod tests { fn f() { crate::testing::projection() } }\n"),
        ("testing.rs", "pub fn projection() { crate::domain::f() }\n"),
    ]);

    assert!(cycles(&krate).is_empty(), "{:?}", krate.edges);
    assert!(layer_violations(&with_test).is_empty(), "{:?}", with_test.edges);
}
