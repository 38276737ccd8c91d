//! The README and `docs/` hold to the code: every row of the README's "where is it decided"
//! index names a file and an item defined in it; every relative link and anchor of the docs
//! resolves; the README's diagram shows every function, queue and table of `template.yaml` and
//! every port of `shared/src/ports/`; and every list kept by hand that must follow the event
//! table (`KINDS`) or the template does, as `docs/extending.md`'s checklists say. Needs no
//! moto.

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tollgate::domain::events::handled_types;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn template() -> Value {
    serde_yaml::from_str(&read("template.yaml")).unwrap()
}

fn resources_of_type(template: &Value, kind: &str) -> BTreeSet<String> {
    let resources = template["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(id, _)| id.as_str().unwrap().to_owned())
        .collect()
}

/// The binary (function) names the template deploys.
fn template_functions() -> BTreeSet<String> {
    let template = template();
    resources_of_type(&template, "AWS::Serverless::Function")
        .iter()
        .map(|id| {
            let binary = &template["Resources"][id.as_str()]["Metadata"]["BuildProperties"]["Binary"];
            binary.as_str().unwrap_or_else(|| panic!("{id} has no Binary")).to_owned()
        })
        .collect()
}

fn kinds() -> Vec<String> {
    handled_types().into_iter().map(str::to_owned).collect()
}

/// Every string literal of `text` that looks like a Stripe event type (`a.b`, lowercase).
fn event_types_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for literal in text.split('"').skip(1).step_by(2) {
        let parts: Vec<&str> = literal.split('.').collect();
        let word = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if parts.len() >= 2 && parts.iter().all(word) {
            found.push(literal.to_owned());
        }
    }
    found
}

/// The text of `text` from the line holding `start` to the first line after it holding `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no `{start}`"));
    let rest = &text[from..];
    let to = rest[start.len()..].find(end).map_or(rest.len(), |i| i + start.len());
    &rest[..to]
}

/// The Markdown files the link test reads: the README and every page of `docs/`.
fn markdown_files() -> Vec<String> {
    let mut files = vec!["README.md".to_owned()];
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

// ---- (a) The index: `path::item` exists ----

/// The rows of the README's table whose header is `| question | where |`.
fn index_rows(readme: &str) -> Vec<(String, String)> {
    let mut lines = readme.lines().skip_while(|line| line.replace(' ', "") != "|question|where|").skip(2);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').rsplitn(2, '|').collect();
        assert_eq!(cells.len(), 2, "index row without two cells: {line}");
        rows.push((cells[1].trim().to_owned(), cells[0].trim().trim_matches('`').to_owned()));
    }
    rows
}

/// Whether `item` is a Rust item (fn, struct, enum, trait, const, type, mod, static or
/// macro) defined in `source`.
fn defines(source: &str, item: &str) -> bool {
    const KINDS: [&str; 9] = ["fn", "struct", "enum", "trait", "const", "type", "mod", "static", "macro_rules!"];
    source.lines().any(|line| {
        let words: Vec<&str> =
            line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!')).filter(|w| !w.is_empty()).collect();
        words.windows(2).any(|pair| KINDS.contains(&pair[0]) && pair[1] == item)
    })
}

/// Why `path::item` does not resolve, if it does not. Rust items may be nested (`Type::method`,
/// each part defined in the file); in YAML the item is a key of `Resources`, `Parameters` or
/// `Outputs`.
fn unresolved(location: &str) -> Option<String> {
    let Some((path, item)) = location.split_once("::") else {
        return Some(format!("`{location}` is not `path::item`"));
    };
    let Ok(source) = std::fs::read_to_string(root().join(path)) else {
        return Some(format!("`{path}` does not exist"));
    };
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        let yaml: Value = serde_yaml::from_str(&source).ok()?;
        let found = ["Resources", "Parameters", "Outputs"].iter().any(|section| !yaml[*section][item].is_null());
        return (!found).then(|| format!("`{path}` has no resource, parameter or output `{item}`"));
    }
    let missing: Vec<&str> = item.split("::").filter(|part| !defines(&source, part)).collect();
    (!missing.is_empty()).then(|| format!("`{path}` defines no `{}`", missing.join("`, `")))
}

#[test]
fn every_row_of_the_index_names_an_item_that_exists() {
    let rows = index_rows(&read("README.md"));

    let broken: Vec<String> = rows
        .iter()
        .filter_map(|(question, location)| unresolved(location).map(|why| format!("{question}: {why}")))
        .collect();

    assert!(rows.len() >= 25, "the index has {} rows, fewer than 25", rows.len());
    assert!(broken.is_empty(), "index rows that do not resolve:\n{}", broken.join("\n"));
}

#[test]
fn the_index_check_refuses_a_missing_file_or_item() {
    assert!(unresolved("shared/src/adapters/dynamo/rate.rs::rate_window").is_none());
    assert!(unresolved("shared/src/domain/apikeys.rs::ApiKey::check").is_none());
    assert!(unresolved("template.yaml::EventsDeadLetterAlarm").is_none());

    assert!(unresolved("shared/src/adapters/dynamo/rate.rs::no_such_item").is_some());
    assert!(unresolved("shared/src/no_such_file.rs::rate_window").is_some());
    assert!(unresolved("template.yaml::NoSuchAlarm").is_some());
    assert!(unresolved("shared/src/domain/apikeys.rs").is_some());
}

// ---- (b) Links and anchors ----

/// GitHub's anchor of a heading: lowercase, punctuation dropped except `-` and `_`, spaces
/// to `-`; repeated headings get `-1`, `-2`, ...
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        let slug: String = text
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    anchors
}

/// The targets of the inline links `[text](target)` of `markdown`, outside code.
fn links(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        // Code spans hold no links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let end = tail.find(')').unwrap_or(tail.len());
            targets.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    targets
}

/// The broken relative links of the Markdown file `file` (a path from the repository root).
fn broken_links(file: &str, markdown: &str) -> Vec<String> {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for target in links(markdown) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = target.split_once('#').map_or((target.as_str(), None), |(p, a)| (p, Some(a)));
        let resolved = if path.is_empty() { PathBuf::from(file) } else { dir.join(path) };
        let on_disk = root().join(&resolved);
        if !on_disk.exists() {
            broken.push(format!("{file}: `{target}`: {} does not exist", resolved.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            let text = std::fs::read_to_string(&on_disk).unwrap_or_default();
            if !anchors(&text).contains(anchor) {
                broken.push(format!("{file}: `{target}`: no heading #{anchor} in {}", resolved.display()));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_and_anchor_of_the_docs_resolves() {
    let broken: Vec<String> = markdown_files().iter().flat_map(|file| broken_links(file, &read(file))).collect();

    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_links_every_page_of_the_docs_and_stays_short() {
    let readme = read("README.md");

    let linked: BTreeSet<String> =
        links(&readme).into_iter().map(|t| t.split('#').next().unwrap().to_owned()).collect();
    let pages: BTreeSet<String> = markdown_files().into_iter().filter(|f| f.starts_with("docs/")).collect();

    for page in ["api", "local-stack", "configuration", "deploy", "stripe-setup", "security", "benchmarks", "extending"]
    {
        assert!(pages.contains(&format!("docs/{page}.md")), "docs/{page}.md is missing");
    }
    let unlinked: Vec<&String> = pages.iter().filter(|page| !linked.contains(*page)).collect();
    assert!(unlinked.is_empty(), "pages the README does not link: {unlinked:?}");
    assert!(readme.lines().count() <= 300, "the README has {} lines, over 300", readme.lines().count());
}

#[test]
fn the_anchor_rules_are_githubs() {
    let anchors = anchors("# Tollgate\n## 1. What it is\n### `POST /credits/checkout`\n## Notes\n## Notes\n");

    assert!(anchors.contains("1-what-it-is"));
    assert!(anchors.contains("post-creditscheckout"));
    assert!(anchors.contains("notes") && anchors.contains("notes-1"));
    assert_eq!(broken_links("docs/api.md", "[x](nowhere.md) [y](../README.md#no-such-heading)").len(), 2);
}

// ---- (d) The diagram ----

/// The labels of the mermaid diagram's nodes (`ID[label]`, `ID[(label)]`, `ID([label])`, quotes
/// dropped), each split at `<br/>`, by the subgraph they are declared in.
fn diagram_labels(readme: &str) -> Vec<(String, Vec<String>)> {
    let diagram = between(readme, "```mermaid", "\n```");
    let mut labels = Vec::new();
    let mut subgraph = String::new();
    for line in diagram.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("subgraph ") {
            subgraph = rest.split(['[', ' ']).next().unwrap_or_default().to_owned();
            continue;
        }
        if line == "end" {
            subgraph.clear();
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find(']') else { break };
            let label = rest[open + 1..open + close].trim_matches(|c| c == '(' || c == ')' || c == '"');
            labels.push((subgraph.clone(), label.split("<br/>").map(str::to_owned).collect()));
            rest = &rest[open + close + 1..];
        }
    }
    labels
}

/// What the diagram lacks: every function, queue and table of the template as a node of its
/// own name, and every port file of `shared/src/ports/` (by file name, with its traits); and
/// what it shows that is not there (a function or port file that does not exist).
fn diagram_problems(readme: &str) -> Vec<String> {
    let labels = diagram_labels(readme);
    let firsts: BTreeSet<&str> = labels.iter().filter_map(|(_, parts)| parts.first().map(String::as_str)).collect();
    let everything =
        labels.iter().flat_map(|(_, parts)| parts.iter().map(String::as_str)).collect::<Vec<_>>().join("\n");
    let template = template();
    let mut problems = Vec::new();

    let functions = template_functions();
    let mut resources = resources_of_type(&template, "AWS::SQS::Queue");
    resources.extend(resources_of_type(&template, "AWS::DynamoDB::Table"));
    for name in functions.iter().chain(&resources) {
        if !firsts.contains(name.as_str()) {
            problems.push(format!("no node `{name}`"));
        }
    }
    for (subgraph, parts) in &labels {
        if subgraph == "functions" && !functions.contains(&parts[0]) {
            problems.push(format!("node `{}` is not a function of the template", parts[0]));
        }
    }

    let ports = root().join("shared/src/ports");
    let mut files: Vec<String> = std::fs::read_dir(&ports)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".rs") && name != "mod.rs")
        .collect();
    files.sort();
    for file in &files {
        if !firsts.contains(file.as_str()) {
            problems.push(format!("no node for the port file `{file}`"));
        }
        let source = std::fs::read_to_string(ports.join(file)).unwrap();
        for line in source.lines().filter(|l| l.starts_with("pub trait ")) {
            let name = line["pub trait ".len()..].split([':', ' ', '<', '{']).next().unwrap();
            if !everything.contains(name) {
                problems.push(format!("the port `{name}` ({file}) is not in the diagram"));
            }
        }
    }
    for (subgraph, parts) in &labels {
        if subgraph == "ports" && !files.contains(&parts[0]) {
            problems.push(format!("node `{}` is not a file of shared/src/ports/", parts[0]));
        }
    }
    problems
}

#[test]
fn the_readme_diagram_shows_every_function_queue_table_and_port() {
    let problems = diagram_problems(&read("README.md"));

    assert!(problems.is_empty(), "the README's diagram:\n{}", problems.join("\n"));
}

#[test]
fn the_diagram_check_catches_a_missing_function_and_a_stale_port() {
    let readme = read("README.md");

    let without_sync = readme.replace("    SYN[sync]\n", "");
    let stale_port = readme.replace("PACC[\"accounts.rs", "PACC[\"store.rs");

    assert!(diagram_problems(&without_sync).iter().any(|p| p == "no node `sync`"));
    assert!(diagram_problems(&stale_port).iter().any(|p| p.contains("store.rs")));
}

// ---- (c) Checklists and the lists kept by hand ----

/// Every backticked repository path of `markdown` that does not exist. A path with `<name>`
/// or `<aggregate>` is checked with `usage` (the last function and aggregate added), one with
/// `<type>` with `invoice.paid`; other placeholders and globs are skipped.
fn missing_paths(markdown: &str) -> Vec<String> {
    const TOP: [&str; 10] =
        ["shared/", "functions/", "dev/", "standin/", "tests/", "events/", "bench/", "scripts/", "docs/", "Cargo.toml"];
    let mut missing = Vec::new();
    for span in markdown.split('`').skip(1).step_by(2) {
        let path = span.replace("<name>", "usage").replace("<aggregate>", "usage").replace("<type>", "invoice.paid");
        let is_path =
            TOP.iter().any(|top| path.starts_with(top)) || ["template.yaml", "openapi.json"].contains(&&*path);
        if !is_path || path.contains(['<', '*', ' ', '{', '(']) || path.contains("::") {
            continue;
        }
        if !root().join(&path).exists() {
            missing.push(path);
        }
    }
    missing
}

#[test]
fn every_file_a_checklist_names_exists() {
    let extending = read("docs/extending.md");
    let checklists = between(&extending, "## Checklists", "\n## Inside the code");

    let missing = missing_paths(checklists);

    assert!(checklists.contains("### Adding a function") && checklists.contains("### Adding a route"));
    assert!(checklists.contains("### Adding a Stripe event type"));
    assert!(missing.is_empty(), "files the checklists name that do not exist: {missing:?}");
    assert_eq!(missing_paths("`functions/<name>/src/nowhere.rs` `bench/run.sh`"), ["functions/usage/src/nowhere.rs"]);
}

#[test]
fn the_webhook_endpoint_enables_exactly_the_handled_event_types() {
    let setup = read("docs/stripe-setup.md");

    let enabled: Vec<String> = setup
        .lines()
        .filter_map(|line| line.split("enabled_events[]=").nth(1))
        .map(|rest| rest.trim_end_matches(['"', ' ', '\\']).to_owned())
        .collect();

    assert_eq!(enabled, kinds(), "docs/stripe-setup.md's enabled_events and KINDS differ");
}

#[test]
fn every_handled_event_type_has_a_sample_and_the_lifecycle_only_triggers_known_types() {
    let samples: BTreeSet<String> = std::fs::read_dir(root().join("events/stripe"))
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().unwrap().strip_suffix(".json").map(str::to_owned))
        .collect();
    let generator = read("standin/examples/sample_events.rs");
    let lifecycle = event_types_in(between(&generator, "const LIFECYCLE", "];"));

    assert_eq!(samples, kinds().into_iter().collect(), "events/stripe/ and KINDS differ");
    let unknown: Vec<&String> = lifecycle.iter().filter(|t| !kinds().contains(t)).collect();
    assert!(unknown.is_empty(), "the sample generator's LIFECYCLE triggers unhandled types: {unknown:?}");
}

#[test]
fn the_standin_triggers_every_handled_event_type() {
    let trigger = read("standin/src/trigger.rs");
    let perform = between(&trigger, "fn perform(", "\n    }\n");

    let armed: BTreeSet<String> = event_types_in(perform).into_iter().collect();

    let missing: Vec<String> = kinds().into_iter().filter(|t| !armed.contains(t)).collect();
    assert!(missing.is_empty(), "standin/src/trigger.rs's `perform` has no arm for {missing:?}");
}

/// Types the request bench measures without triggering them itself: each comes with the one
/// named (`checkout.session.completed` makes the subscription).
const COMES_ALONG: &[(&str, &str)] = &[("customer.subscription.created", "checkout.session.completed")];

#[test]
fn the_request_bench_triggers_every_handled_event_type() {
    let bench = read("bench/requests/src/main.rs");
    let sequence = event_types_in(between(&bench, "fn sequence()", "\n}\n"));

    let along = |t: &String| COMES_ALONG.iter().any(|(ty, with)| ty == t && sequence.iter().any(|s| s == with));
    let missing: Vec<String> = kinds().into_iter().filter(|t| !sequence.contains(t) && !along(t)).collect();
    let unknown: Vec<&String> = sequence.iter().filter(|t| !kinds().contains(t)).collect();

    assert!(missing.is_empty(), "bench/requests' sequence misses {missing:?}");
    assert!(unknown.is_empty(), "bench/requests' sequence triggers unhandled types {unknown:?}");
}

/// The quoted names of a `&[...]` constant named `name` in `source`.
fn quoted_list(source: &str, name: &str) -> BTreeSet<String> {
    let list = between(source, name, "];");
    list.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_benchmarks_list_every_function_of_the_template() {
    let functions = template_functions();
    let run = read("bench/run.sh");
    let coldstart = read("bench/coldstart/src/main.rs");
    let warm = read("bench/warm/src/main.rs");

    let run_list: BTreeSet<String> =
        between(&run, "FUNCTIONS=\"", "\"\n")["FUNCTIONS=\"".len()..].split_whitespace().map(str::to_owned).collect();
    let mut coldstart_list = quoted_list(&coldstart, "const DEFAULT_FUNCTIONS");
    coldstart_list.retain(|name| !name.starts_with("hello-lambda"));
    let warm_list = quoted_list(&warm, "const FUNCTIONS");

    assert_eq!(run_list, functions, "bench/run.sh's FUNCTIONS");
    assert_eq!(coldstart_list, functions, "bench/coldstart's DEFAULT_FUNCTIONS");
    assert_eq!(warm_list, functions, "bench/warm's FUNCTIONS");
    let coldstart_arms = between(&coldstart, "fn event_for(", "\n}\n");
    let warm_arms = between(&warm, "async fn invocations(", "\n}\n");
    for function in &functions {
        let arm = format!("\"{function}\" =>");
        assert!(coldstart_arms.contains(&arm), "bench/coldstart's event_for has no arm for {function}");
        assert!(warm_arms.contains(&arm), "bench/warm's invocations has no arm for {function}");
    }
}

#[test]
fn the_runbook_lists_every_alarm_of_the_template() {
    let deploy = read("docs/deploy.md");
    let runbook = between(&deploy, "## Alarms", "\n## ");

    let missing: Vec<String> = resources_of_type(&template(), "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|alarm| !runbook.contains(&format!("| `{alarm}` |")))
        .collect();

    assert!(missing.is_empty(), "alarms docs/deploy.md's runbook does not list: {missing:?}");
}
