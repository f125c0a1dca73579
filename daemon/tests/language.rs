//! Golden tests of the workflow language.
//!
//! - every example in `workflows/` lowers, and its plan matches the snapshot;
//! - every example satisfies the JSON Schema from `vakt schema`;
//! - every file in `tests/ui/` is invalid, and the exact rendered error
//!   output (`file:line:column: message` + snippet) matches its snapshot.
//!
//! Snapshots live in `tests/snapshots/`; after an intended change, review
//! with `INSTA_UPDATE=always cargo test -p vakt --test language` and `git diff`.

use std::path::{Path, PathBuf};

use vakt::workflow;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn examples() -> Vec<PathBuf> {
    let files = workflow::expand_paths(&[repo_root().join("workflows")]).unwrap();
    assert!(
        files.len() >= 3,
        "the three example workflows are missing: {files:?}"
    );
    files
}

fn ui_cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn examples_lower_to_their_golden_plans() {
    let loaded = workflow::load_set(&examples());
    for l in &loaded {
        let name = l.path.file_stem().unwrap().to_str().unwrap().to_owned();
        let plan = match &l.result {
            Ok(plan) => plan,
            Err(_) => panic!("{} is invalid:\n{}", l.path.display(), l.render_errors()),
        };
        let json = serde_json::to_string_pretty(&**plan).unwrap();
        insta::assert_snapshot!(format!("plan-{name}"), json);
    }
}

#[test]
fn examples_satisfy_the_json_schema() {
    let schema: serde_json::Value = serde_json::from_str(&workflow::schema::json_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value =
            serde_saphyr::from_str_with_options(&text, workflow::lower::yaml_options()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not satisfy the schema:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn the_committed_schema_is_current() {
    // The examples point editors at it (`# yaml-language-server: $schema=…`).
    let committed = std::fs::read_to_string(repo_root().join("vakt-workflow.schema.json")).unwrap();
    assert_eq!(
        committed.trim_end(),
        workflow::schema::json_schema().trim_end(),
        "vakt-workflow.schema.json is stale: run `cargo run -q -- schema > vakt-workflow.schema.json`"
    );
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let schema: serde_json::Value = serde_json::from_str(&workflow::schema::json_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let bad = serde_json::json!({"id": "x", "steps": [{"id": "a", "wait": "1h", "colour": "red"}]});
    assert!(
        !validator.is_valid(&bad),
        "an unknown key must fail the schema"
    );
    let missing = serde_json::json!({"id": "x"});
    assert!(
        !validator.is_valid(&missing),
        "a missing `steps` must fail the schema"
    );
}

#[test]
fn bad_inputs_give_exact_errors() {
    let cases = ui_cases();
    assert!(
        cases.len() >= 32,
        "expected at least 32 bad-input cases, found {}",
        cases.len()
    );
    for path in cases {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let mut loaded = vec![workflow::load_source(format!("{name}.yaml"), source)];
        workflow::check_set(&mut loaded);
        let out = loaded[0].render_errors();
        assert!(
            !out.is_empty(),
            "{name}.yaml should be invalid but validated"
        );
        assert!(
            out.starts_with(&format!("{name}.yaml:")),
            "{name}: errors must start with file:line:column"
        );
        insta::assert_snapshot!(format!("ui-{name}"), out);
    }
}
