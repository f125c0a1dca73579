//! Reports: `GET /api/v1/instances/{id}/report?format=csv|html|json`.
//!
//! Any finished instance whose `output.rows` is a list of flat objects has a
//! report: one line per row, the columns in the order of the first row's keys
//! (later rows' extra keys are appended). Text is shown as is; numbers and
//! booleans as JSON; `null` as an empty cell; lists and maps as compact JSON.
//! The format is `?format=` (default `json`), else the `Accept` header
//! (`text/csv`, `text/html`). Operators and admins only.
//!
//! CSV follows RFC 4180 (CRLF, fields with `,` `"` CR or LF quoted, quotes
//! doubled), starts with a UTF-8 byte order mark (Excel then reads å, ä, ö
//! right), and defuses spreadsheet formulas: a text cell starting with `=`,
//! `+`, `-`, `@`, tab or CR gets a leading `'`. HTML is one self-contained
//! page (inline CSS, no scripts, no external assets), every value escaped.
//! docs/reports.md is the user's guide.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, Caller, time};
use crate::serve::Shared;
use crate::serve::pages::escape;
use crate::serve::tokens::ApiRole;

const READERS: &[ApiRole] = &[ApiRole::Admin, ApiRole::Operator];

#[derive(Deserialize)]
pub struct ReportQuery {
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Html,
}

/// A report's content, independent of the format.
struct Report {
    workflow: String,
    title: String,
    id: String,
    status: String,
    finished_at: Value,
    /// `output` without `rows`.
    summary: Map<String, Value>,
    columns: Vec<String>,
    rows: Vec<Map<String, Value>>,
}

/// `GET /api/v1/instances/{id}/report`
pub async fn report(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(READERS, "reading a report")?;
    let format = format(q.format.as_deref(), &headers)?;
    let i = s
        .runtime
        .instance(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no instance `{id}`")))?;
    if !i.status.is_final() {
        return Err(no_report(format!(
            "instance `{id}` has not finished ({}); its report is made when it has",
            i.status.as_str()
        )));
    }
    let mut summary = match &i.output {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let rows = match summary.shift_remove("rows") {
        Some(Value::Array(rows)) => rows,
        _ => {
            return Err(no_report(format!(
                "the output of instance `{id}` has no `rows` list to report"
            )));
        }
    };
    let rows: Vec<Map<String, Value>> = rows
        .into_iter()
        .map(|r| match r {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| {
            no_report(format!(
                "`output.rows` of instance `{id}` is not a list of objects"
            ))
        })?;
    let title = s
        .runtime
        .plan_for(&i.hash)
        .map(|p| p.title.clone())
        .unwrap_or_else(|_| i.workflow.clone());
    let report = Report {
        workflow: i.workflow.clone(),
        title,
        id: i.id.clone(),
        status: i.status.as_str().to_owned(),
        finished_at: time(Some(i.updated_at)),
        columns: columns(&rows),
        summary,
        rows,
    };
    Ok(match format {
        Format::Json => axum::Json(json_view(&report)).into_response(),
        Format::Csv => csv_response(&report),
        Format::Html => html_response(&report),
    })
}

fn no_report(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "no_report", message)
}

/// `?format=` wins; then the first of `text/csv`, `text/html`,
/// `application/json` in `Accept`; then JSON.
fn format(query: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(f) = query {
        return match f {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(ApiError::bad_request(format!(
                "format `{other}` is not one of csv, html, json"
            ))),
        };
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    for media in accept {
        match media.as_str() {
            "text/csv" => return Ok(Format::Csv),
            "text/html" => return Ok(Format::Html),
            "application/json" => return Ok(Format::Json),
            _ => {}
        }
    }
    Ok(Format::Json)
}

/// The first row's keys in order, then any new key of a later row.
fn columns(rows: &[Map<String, Value>]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !cols.iter().any(|c| c == k) {
                cols.push(k.clone());
            }
        }
    }
    cols
}

/// A value as cell text: text as is, `null` empty, the rest compact JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn json_view(r: &Report) -> Value {
    json!({
        "id": r.id,
        "workflow": r.workflow,
        "title": r.title,
        "status": r.status,
        "finished_at": r.finished_at,
        "summary": r.summary,
        "columns": r.columns,
        "rows": r.rows,
    })
}

/// A file name made of safe characters only.
fn file_name(r: &Report, ext: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}.{ext}", safe(&r.workflow), safe(&r.id))
}

fn csv_response(r: &Report) -> Response {
    let mut resp = (StatusCode::OK, csv(&r.columns, &r.rows)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file_name(r, "csv")))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The CSV text: BOM, a header line, one line per row, CRLF line ends.
fn csv(columns: &[String], rows: &[Map<String, Value>]) -> String {
    let mut out = String::from('\u{feff}');
    if columns.is_empty() {
        return out;
    }
    let line = |out: &mut String, fields: &mut dyn Iterator<Item = String>| {
        let mut first = true;
        for f in fields {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&csv_field(&f));
        }
        out.push_str("\r\n");
    };
    line(&mut out, &mut columns.iter().map(|c| defuse(c)));
    for row in rows {
        line(
            &mut out,
            &mut columns.iter().map(|c| match row.get(c) {
                Some(Value::String(s)) => defuse(s),
                other => cell(other),
            }),
        );
    }
    out
}

/// Text a spreadsheet would run as a formula gets a leading `'`.
fn defuse(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// One RFC 4180 field.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn html_response(r: &Report) -> Response {
    let mut resp = (StatusCode::OK, html(r)).into_response();
    let h = resp.headers_mut();
    let mut set = |k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", file_name(r, "html")))
    {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
line-height:1.4;color:#1a1a1a;background:#fff;margin:1.5rem}h1{font-size:1.4rem;margin:0 0 .25rem}\
.meta{color:#444;margin:0 0 1rem}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem;\
margin:0 0 1.5rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;\
text-align:left;vertical-align:top}th{background:#eee;position:sticky;top:0}\
tbody tr:nth-child(even){background:#f7f7f7}td{white-space:pre-wrap;overflow-wrap:anywhere}\
@media print{th{position:static}body{margin:0}}";

/// The self-contained HTML page.
fn html(r: &Report) -> String {
    let finished = cell(Some(&r.finished_at));
    let mut out = format!(
        "<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{t} · {id}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{t}</h1>\n<p class=\"meta\">{wf} · instance <code>{id}</code> · {st} {fin}</p>\n",
        t = escape(&r.title),
        id = escape(&r.id),
        wf = escape(&r.workflow),
        st = escape(&r.status),
        fin = escape(&finished),
    );
    if !r.summary.is_empty() {
        out.push_str("<dl>\n");
        for (k, v) in &r.summary {
            out.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>\n",
                escape(k),
                escape(&cell(Some(v)))
            ));
        }
        out.push_str("</dl>\n");
    }
    if r.rows.is_empty() {
        out.push_str("<p>No rows.</p>\n");
    } else {
        out.push_str(&format!(
            "<table>\n<caption>{} rows</caption>\n<thead><tr>",
            r.rows.len()
        ));
        for c in &r.columns {
            out.push_str(&format!("<th scope=\"col\">{}</th>", escape(c)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &r.rows {
            out.push_str("<tr>");
            for c in &r.columns {
                out.push_str(&format!("<td>{}</td>", escape(&cell(row.get(c)))));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn columns_follow_the_first_row_then_new_keys() {
        let r = rows(json!([{"b": 1, "a": 2}, {"a": 3, "c": 4}]));
        assert_eq!(columns(&r), ["b", "a", "c"]);
    }

    #[test]
    fn csv_quotes_doubles_and_ends_lines_with_crlf() {
        let r = rows(json!([
            {"account": "ola", "justification": "Byttet skole, \"sa\" han", "n": 3},
            {"account": "kari", "justification": "linje 1\nlinje 2", "extra": {"x": [1, null]}},
            {"account": "per\r", "n": null, "ok": true}
        ]));
        let text = csv(&columns(&r), &r);
        assert!(text.starts_with('\u{feff}'));
        assert_eq!(
            &text[3..],
            "account,justification,n,extra,ok\r\n\
             ola,\"Byttet skole, \"\"sa\"\" han\",3,,\r\n\
             kari,\"linje 1\nlinje 2\",,\"{\"\"x\"\":[1,null]}\",\r\n\
             \"per\r\",,,,true\r\n"
        );
    }

    #[test]
    fn csv_keeps_nordic_letters_after_a_bom() {
        let r = rows(json!([{"navn": "Åse Ødegård", "gruppe": "tilgang-økonomi"}]));
        let text = csv(&columns(&r), &r);
        assert_eq!(
            text.as_bytes()[..3],
            [0xef, 0xbb, 0xbf],
            "UTF-8 byte order mark"
        );
        assert!(text.ends_with("Åse Ødegård,tilgang-økonomi\r\n"));
        assert_eq!(csv(&[], &[]), "\u{feff}");
    }

    #[test]
    fn csv_defuses_formulas_in_text_but_not_numbers() {
        let r = rows(json!([{
            "a": "=HYPERLINK(\"http://x\")", "b": "+1", "c": "-2", "d": "@SUM(A1)",
            "e": "\tx", "f": -3, "g": "a=b", "h": ""
        }]));
        let text = csv(&columns(&r), &r);
        let line = text.split("\r\n").nth(1).unwrap();
        assert_eq!(
            line,
            "\"'=HYPERLINK(\"\"http://x\"\")\",'+1,'-2,'@SUM(A1),'\tx,-3,a=b,"
        );
    }

    fn sample(rows_: Value) -> Report {
        let rows = rows(rows_);
        let mut summary = Map::new();
        summary.insert("removed".into(), json!(1));
        summary.insert("note".into(), json!("<b>&</b>"));
        Report {
            workflow: "access-recertification".into(),
            title: "Gjennomgang <av> tilganger".into(),
            id: "01J\"x".into(),
            status: "completed".into(),
            finished_at: json!("2027-01-29T06:00:00Z"),
            summary,
            columns: columns(&rows),
            rows,
        }
    }

    #[test]
    fn html_escapes_everything_and_loads_nothing() {
        let r = sample(json!([{"account": "<script>alert(1)</script>", "why": "a & 'b' \"c\""}]));
        let page = html(&r);
        assert!(!page.contains("<script>"));
        assert!(page.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
        assert!(page.contains("<td>a &amp; &#39;b&#39; &quot;c&quot;</td>"));
        assert!(page.contains("<h1>Gjennomgang &lt;av&gt; tilganger</h1>"));
        assert!(page.contains("<code>01J&quot;x</code>"));
        assert!(page.contains("2027-01-29T06:00:00Z"));
        assert!(page.contains("<dt>note</dt><dd>&lt;b&gt;&amp;&lt;/b&gt;</dd>"));
        assert!(page.contains("<dt>removed</dt><dd>1</dd>"));
        assert!(page.contains("<th scope=\"col\">account</th><th scope=\"col\">why</th>"));
        for external in ["src=", "href=", "<link", "<script", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn html_without_rows_says_so() {
        assert!(html(&sample(json!([]))).contains("<p>No rows.</p>"));
    }

    #[test]
    fn format_from_query_then_accept() {
        let mut h = HeaderMap::new();
        assert_eq!(format(None, &h).unwrap(), Format::Json);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert_eq!(format(None, &h).unwrap(), Format::Html);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        assert_eq!(format(None, &h).unwrap(), Format::Csv);
        assert_eq!(format(Some("json"), &h).unwrap(), Format::Json);
        assert_eq!(
            format(Some("xlsx"), &h).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn file_names_are_safe() {
        let r = sample(json!([]));
        assert_eq!(file_name(&r, "csv"), "access-recertification-01J_x.csv");
    }
}
