//! What the loader reports: the workflow list of `GET /api/v1/workflows`
//! and what one scan did.

use serde::Serialize;

use crate::engine::Ts;
use crate::serve::scheduler::rfc3339_utc;
use crate::workflow::Plan;

/// What one scan did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScanSummary {
    /// Workflow files found.
    pub files: usize,
    /// Workflow ids installed (new or changed).
    pub loaded: Vec<String>,
    /// Files that became invalid or whose errors changed.
    pub invalid: Vec<String>,
    /// Workflow ids retired.
    pub removed: Vec<String>,
    /// The directory could not be listed; nothing was changed.
    pub error: Option<String>,
}

/// A workflow's state, for `GET /api/v1/workflows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    /// Its file's latest version is active.
    Active,
    /// Its file's latest version is invalid; an older one may be active.
    Invalid,
    /// Its file is gone (or now declares another id): no new starts.
    Removed,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Active => "active",
            WorkflowStatus::Invalid => "invalid",
            WorkflowStatus::Removed => "removed",
        }
    }
}

impl PartialEq<&str> for WorkflowStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One workflow (or invalid file), as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowInfo {
    /// The id (from the file name when the file cannot be parsed).
    pub id: String,
    pub title: String,
    pub file: String,
    pub status: WorkflowStatus,
    /// The hash new starts use (the last one, when removed); none if no
    /// version of the file was ever valid.
    pub hash: Option<String>,
    /// Set when the file is invalid and an older version is still active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_hash: Option<String>,
    /// `file:line:column: message`, for the file's latest version.
    pub errors: Vec<String>,
    /// When the file's latest version was read (RFC 3339 UTC); for a removed
    /// workflow, when it was retired.
    pub loaded_at: String,
    pub triggers: TriggerInfo,
}

/// How a workflow can be started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TriggerInfo {
    pub api: bool,
    pub cron: Vec<CronInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CronInfo {
    pub name: String,
    pub schedule: String,
    pub timezone: String,
}

pub(super) fn info(
    p: &Plan,
    file: String,
    status: WorkflowStatus,
    errors: Vec<String>,
    at: Ts,
) -> WorkflowInfo {
    WorkflowInfo {
        id: p.id.clone(),
        title: p.title.clone(),
        file,
        status,
        hash: Some(p.hash.clone()),
        active_hash: None,
        errors,
        loaded_at: rfc3339_utc(at),
        triggers: TriggerInfo {
            api: p.triggers.api,
            cron: p
                .triggers
                .cron
                .iter()
                .map(|c| CronInfo {
                    name: c.name.clone(),
                    schedule: c.schedule.clone(),
                    timezone: c.timezone.name().to_owned(),
                })
                .collect(),
        },
    }
}
