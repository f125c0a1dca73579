//! Plain-text views of API answers: aligned tables, times in UTC, cells
//! cut to a width and cleaned of control characters (a workflow title is
//! data and must not drive the terminal).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Widest cell, in characters, before it is cut with `…`.
pub const CELL: usize = 40;
/// The last column may be wider: nothing follows it.
pub const LAST_CELL: usize = 80;

/// An aligned table: columns two spaces apart, no trailing spaces.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let n = self.headers.len();
        let mut cells: Vec<String> = cells
            .into_iter()
            .take(n)
            .enumerate()
            .map(|(i, c)| cut(&c, if i + 1 == n { LAST_CELL } else { CELL }))
            .collect();
        cells.resize(n, String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let headers = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// One line of at most `max` characters: control characters (newlines,
/// escapes) become spaces, a longer text ends in `…`.
pub fn cut(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let mut short: String = clean.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// A time from the API as RFC 3339 UTC to the second; `-` for none; text
/// that is not a time is shown as it is.
pub fn time(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            Err(_) => s.clone(),
        },
        Some(other) => text(Some(other)),
    }
}

/// A time in the past (to mark overdue tasks).
pub fn is_past(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t < Utc::now())
}

/// A value as a cell: strings bare, `-` for none, lists joined with `, `,
/// anything else as compact JSON.
pub fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| text(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// `field` of an object as a cell (see [`text`]).
pub fn field(v: &Value, name: &str) -> String {
    text(v.get(name))
}

/// The objects in `v[name]`, or none.
pub fn list<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `GET /api/v1/workflows`.
pub fn workflows(v: &Value) -> String {
    let mut t = Table::new(&["ID", "STATUS", "TITLE", "LOADED", "FILE", "TRIGGERS"]);
    let mut problems = String::new();
    for w in list(v, "workflows") {
        let mut triggers: Vec<String> = Vec::new();
        if w.pointer("/triggers/api").and_then(Value::as_bool) == Some(true) {
            triggers.push("api".into());
        }
        for c in w
            .pointer("/triggers/cron")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Unnamed triggers are called `cron[0]`, `cron[1]`, …
            let name = field(c, "name");
            let name = if name.starts_with("cron[") {
                String::new()
            } else {
                format!(" {name}")
            };
            let (schedule, tz) = (field(c, "schedule"), field(c, "timezone"));
            triggers.push(format!("cron{name} `{schedule}` {tz}"));
        }
        t.row(vec![
            field(w, "id"),
            field(w, "status"),
            field(w, "title"),
            time(w.get("loaded_at")),
            field(w, "file"),
            text(Some(&Value::from(triggers))),
        ]);
        for e in list(w, "errors") {
            problems.push_str(&format!(
                "{}: {}\n",
                field(w, "id"),
                cut(&text(Some(e)), 200)
            ));
        }
    }
    if t.is_empty() {
        return "no workflows loaded\n".into();
    }
    t.render() + &problems
}

/// `GET /api/v1/instances`.
pub fn instances(v: &Value) -> String {
    let mut t = Table::new(&[
        "ID",
        "WORKFLOW",
        "STATUS",
        "STARTED",
        "UPDATED",
        "STARTED BY",
    ]);
    for i in list(v, "instances") {
        t.row(vec![
            field(i, "id"),
            field(i, "workflow"),
            field(i, "status"),
            time(i.get("started_at")),
            time(i.get("updated_at")),
            field(i, "started_by"),
        ]);
    }
    if t.is_empty() {
        return "no instances match\n".into();
    }
    t.render()
}

/// `GET /api/v1/tasks`; `outcome` adds the column of closed tasks.
pub fn tasks(tasks: &[Value], outcome: bool) -> String {
    let mut headers = vec![
        "ID",
        "WORKFLOW",
        "TITLE",
        "ASSIGNEES",
        "DUE",
        "STATUS",
        "OPTIONS",
    ];
    if outcome {
        headers.push("OUTCOME");
    }
    let mut t = Table::new(&headers);
    for task in tasks {
        let open = task.get("status").and_then(Value::as_str) == Some("open");
        let mut due = time(task.get("due"));
        if open && is_past(task.get("due")) {
            due.push_str(" overdue");
        }
        let options: Vec<&str> = list(task, "options")
            .iter()
            .filter_map(|o| o.get("id").and_then(Value::as_str))
            .collect();
        t.row(vec![
            field(task, "id"),
            field(task, "workflow"),
            field(task, "title"),
            field(task, "assignees"),
            due,
            field(task, "status"),
            if options.is_empty() {
                "-".into()
            } else {
                options.join("/")
            },
            field(task, "outcome"),
        ]);
    }
    if t.is_empty() {
        return if outcome {
            "no tasks\n"
        } else {
            "no open tasks\n"
        }
        .into();
    }
    t.render()
}

/// `GET /api/v1/instances/{id}` and its history.
pub fn show(inst: &Value, history: &Value) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<9} {v}\n"));
    line("id", field(inst, "id"));
    let hash: String = field(inst, "hash").chars().take(12).collect();
    line(
        "workflow",
        format!("{} (definition {hash})", field(inst, "workflow")),
    );
    line("status", field(inst, "status"));
    if !list(inst, "waiting").is_empty() {
        line("waiting", cut(&field(inst, "waiting"), 200));
    }
    line(
        "started",
        format!(
            "{} by {}",
            time(inst.get("started_at")),
            field(inst, "started_by")
        ),
    );
    line("updated", time(inst.get("updated_at")));
    for k in ["input", "output", "error"] {
        if !inst.get(k).is_none_or(Value::is_null) {
            line(k, cut(&field(inst, k), 200));
        }
    }
    let tasks_ = list(inst, "tasks");
    if !tasks_.is_empty() {
        out.push_str("\ntasks\n");
        out.push_str(&tasks(tasks_, true));
    }
    if let Some(clocks) = inst
        .get("clocks")
        .and_then(Value::as_object)
        .filter(|c| !c.is_empty())
    {
        let mut t = Table::new(&["CLOCK", "ANCHOR", "DUE", "BREACHED", "MET"]);
        for (name, c) in clocks {
            t.row(vec![
                cut(name, CELL),
                time(c.get("anchor")),
                time(c.get("due")),
                field(c, "breached"),
                time(c.get("met_at")),
            ]);
        }
        out.push_str("\nclocks\n");
        out.push_str(&t.render());
    }
    let records = list(history, "history");
    let verified = history.get("verified").and_then(Value::as_bool) == Some(true);
    out.push_str(&format!(
        "\nhistory: {} record(s), chain {}\n",
        records.len(),
        if verified {
            "verified"
        } else {
            "DOES NOT VERIFY"
        }
    ));
    let mut t = Table::new(&["SEQ", "AT", "TYPE", "RECORD"]);
    for r in records {
        let mut record = r.get("record").cloned().unwrap_or(Value::Null);
        if let Some(o) = record.as_object_mut() {
            o.remove("type");
        }
        t.row(vec![
            field(r, "seq"),
            time(r.get("at")),
            field(r, "type"),
            text(Some(&record)),
        ]);
    }
    out.push_str(&t.render());
    out
}
