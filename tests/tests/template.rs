//! `template.yaml` and the workspace agree: every function package is deployed, and every
//! deployed function names a binary the workspace builds.

use std::collections::BTreeSet;
use std::path::Path;
use tollgate_dev::resources::{Template, template_path};

fn workspace_functions() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect()
}

#[test]
fn every_function_package_is_in_the_template_and_back() {
    let template = Template::load(&template_path()).unwrap();

    let deployed: BTreeSet<String> = template.functions.iter().map(|(_, binary)| binary.clone()).collect();

    assert_eq!(deployed, workspace_functions());
}

#[test]
fn every_template_function_builds_a_binary_of_its_name() {
    let template = Template::load(&template_path()).unwrap();

    for (logical_id, binary) in &template.functions {
        let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions").join(binary);
        let manifest = std::fs::read_to_string(package.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{binary}\"")), "{logical_id}: package is not named {binary}");
        assert!(package.join("src/main.rs").exists(), "{logical_id}: no src/main.rs");
        let resource = &template.raw["Resources"][logical_id.as_str()];
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{logical_id}");
        assert_eq!(
            resource["Properties"]["Runtime"].as_str().or(template.raw["Globals"]["Function"]["Runtime"].as_str()),
            Some("provided.al2023")
        );
    }
}
