//! The JSON Schema of workflow files, generated from the authored types.
//!
//! Editors with a YAML language server use it for completion and checks
//! (`vakt schema > vakt-workflow.schema.json`; see docs/workflow-language.md).
//! The schema checks shape only; `vakt validate` checks meaning.

use super::authored::WorkflowFile;

/// The schema as pretty JSON.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(WorkflowFile);
    schema.insert(
        "$id".into(),
        "https://vakt.invalid/schema/workflow.json".into(),
    );
    schema.insert("title".into(), "vakt workflow".into());
    serde_json::to_string_pretty(&schema).expect("a schema is always serializable")
}
