//! The sections before the steps: `input`, `triggers` and `clocks`.
//!
//! Input defaults and `enum` values are checked against their field's type;
//! a cron trigger must parse, name a real time zone and give every required
//! input field (nobody is there to supply it); a clock must be anchored on a
//! datetime and warn before, not after, its deadline.

use super::super::authored::{self, WorkflowFile};
use super::super::duration::Duration;
use super::super::plan;
use super::super::span::{Loc, Sp};
use super::steps::closest;
use super::{Lowerer, Scope, check_type, is_identifier, type_name};

impl Lowerer {
    pub(super) fn lower_input(&mut self, file: &WorkflowFile) -> Vec<plan::InputField> {
        let mut out = Vec::new();
        for (name, field) in &file.input {
            if !is_identifier(name) {
                let at = self.src.key_of(field.loc, name);
                self.error(at, format!("input field `{name}` is not a valid name: use lower-case letters, digits and `_`, starting with a letter (it is read as `input.{name}`)"));
            }
            let f = &field.value;
            let ty = f.ty.value;
            if let Some(items) = &f.items
                && ty != authored::FieldType::List
            {
                let at = self.src.key_of(items.loc, "items");
                self.error(at, format!("input field `{name}`: `items` applies only to `type: list`; remove it, or make the field a list"));
            }
            if let Some(default) = &f.default
                && let Err(why) = check_type(ty, &default.value)
            {
                self.error(
                    default.loc,
                    format!("input field `{name}`: the default {why}"),
                );
            }
            if let Some(allowed) = &f.allowed {
                for v in &allowed.value {
                    if let Err(why) = check_type(ty, v) {
                        self.error(
                            allowed.loc,
                            format!("input field `{name}`: `enum` value {why}"),
                        );
                    }
                }
                if let Some(default) = &f.default
                    && !allowed.value.contains(&default.value)
                {
                    let values: Vec<String> = allowed
                        .value
                        .iter()
                        .map(|v| {
                            format!(
                                "`{}`",
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                            )
                        })
                        .collect();
                    self.error(default.loc, format!("input field `{name}`: the default {} is not one of the `enum` values {}", default.value, values.join(", ")));
                }
            }
            out.push(plan::InputField {
                name: name.clone(),
                ty,
                required: f
                    .required
                    .as_ref()
                    .map(|r| r.value)
                    .unwrap_or(f.default.is_none()),
                default: f.default.as_ref().map(|d| d.value.clone()),
                allowed: f.allowed.as_ref().map(|a| a.value.clone()),
                items: f.items.as_ref().map(|i| i.value),
                description: f.description.clone(),
            });
        }
        out
    }

    pub(super) fn lower_triggers(&mut self, file: &WorkflowFile) -> plan::Triggers {
        let Some(t) = &file.triggers else {
            return plan::Triggers {
                api: true,
                cron: Vec::new(),
            };
        };
        let api = t.api.as_ref().map(|a| a.value).unwrap_or(true);
        let mut cron = Vec::new();
        for (i, c) in t.value.cron.iter().enumerate() {
            let parsed = self.cron_schedule(&c.schedule);
            let tz = match c.timezone.value.parse::<chrono_tz::Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    let hint = closest(
                        &c.timezone.value,
                        chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()),
                    )
                    .map(|z| format!(" (did you mean `{z}`?)"))
                    .unwrap_or_default();
                    self.error(c.timezone.loc, format!("`{}` is not a known time zone{hint}: use an IANA name such as `Europe/Oslo` or `Europe/Stockholm`", c.timezone.value));
                    None
                }
            };
            let input = self.check_trigger_input(c, file);
            if let (Some(cron_), Some(timezone)) = (parsed, tz) {
                cron.push(plan::CronTrigger {
                    name: format!("cron[{i}]"),
                    schedule: c.schedule.value.trim().to_owned(),
                    timezone,
                    cron: cron_,
                    catch_up: c
                        .catch_up
                        .as_ref()
                        .map(|c| c.value)
                        .unwrap_or(authored::CatchUp::Latest),
                    input,
                });
            }
        }
        if !api && t.value.cron.is_empty() {
            let at = t.api.as_ref().map_or(t.loc, |a| a.loc);
            self.error(at, "no way to start this workflow: `api: false` and no `cron` trigger; allow the API or add a `cron` trigger");
        }
        plan::Triggers { api, cron }
    }

    /// Parses a schedule; on failure, points at the field that is wrong.
    fn cron_schedule(&mut self, schedule: &Sp<String>) -> Option<croner::Cron> {
        let text = &schedule.value;
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build();
        let problem = cron_problem(text);
        match (parser.parse(text.trim()), problem) {
            (Ok(p), None) => Some(p),
            (_, Some((start, end, why))) => {
                let at = self.src.point_in(schedule.loc, text, start, end);
                self.error(
                    at,
                    format!("`{}` is not a cron schedule: {why}", text.trim()),
                );
                None
            }
            (Err(e), None) => {
                self.error(schedule.loc, format!("`{}` is not a cron schedule ({}): write 5 fields `minute hour day-of-month month day-of-week`, such as `0 7 15 1 *`, or a macro such as `@yearly`", text.trim(), e.to_string().trim_end_matches('.').to_lowercase()));
                None
            }
        }
    }

    /// A scheduled start has nobody to supply missing input: check it now.
    fn check_trigger_input(
        &mut self,
        c: &authored::CronTrigger,
        file: &WorkflowFile,
    ) -> serde_json::Value {
        let empty = indexmap::IndexMap::new();
        let map = c.input.as_ref().map_or(&empty, |i| &i.value);
        let loc = c
            .input
            .as_ref()
            .map_or(c.schedule.loc, |i| self.src.key_of(i.loc, "input"));
        for (key, v) in map {
            if !file.input.contains_key(key) {
                let hint = closest(key, file.input.keys())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_else(|| " : declare it under `input`, or remove it here".to_owned());
                let at = self.src.key_of(v.loc, key);
                self.error(
                    at,
                    format!(
                        "trigger input `{key}` is not a field of this workflow's `input`{hint}"
                    )
                    .replace(" :", ":"),
                );
            }
        }
        for (name, field) in &file.input {
            let required = field
                .value
                .required
                .as_ref()
                .map(|r| r.value)
                .unwrap_or(field.value.default.is_none());
            match map.get(name) {
                None if required => self.error(loc, format!("the cron trigger does not give the required input field `{name}`: add it to the trigger's `input`, or give the field a `default`")),
                Some(v) => {
                    if let Err(why) = check_type(field.value.ty.value, &v.value) {
                        self.error(v.loc, format!("trigger input `{name}`: {why}"));
                    }
                }
                None => {}
            }
        }
        serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
        )
    }

    pub(super) fn lower_clocks(&mut self, file: &WorkflowFile) -> Vec<plan::Clock> {
        let mut out = Vec::new();
        for (name, def) in &file.clocks {
            if !is_identifier(name) {
                let at = self.src.key_of(def.loc, name);
                self.error(at, format!("clock name `{name}` is not valid: use lower-case letters, digits and `_` (it is read as `clocks.{name}`)"));
            }
            let root = Scope::default();
            let c = &def.value;
            let anchor = if self.check_anchor(name, &c.anchor) {
                self.expression(&c.anchor, &root, &format!("clock `{name}` `anchor`"))
            } else {
                None
            };
            let when = c
                .when
                .as_ref()
                .and_then(|w| self.expression(w, &root, &format!("clock `{name}` `when`")));
            let mut warn_before: Vec<Duration> = Vec::new();
            for w in &c.warn_before {
                if w.value >= c.duration.value {
                    self.error(w.loc, format!("clock `{name}` warns {} before a deadline only {} after the anchor: the warning would come before the clock starts; warn less than {} before", w.value, c.duration.value, c.duration.value));
                }
                warn_before.push(w.value);
            }
            warn_before.sort_by(|a, b| b.cmp(a));
            warn_before.dedup();
            let stopped_by = c.stopped_by.as_ref().and_then(|s| match self.by_id.get(&s.value).copied() {
                Some(id) => {
                    // Steps are lowered before clocks, so the kind is known.
                    let kind = self.nodes.get(id.index()).and_then(|n| n.as_ref()).map(|n| n.kind.name());
                    if let Some(k @ ("if" | "switch")) = kind {
                        self.error(s.loc, format!("clock `{name}` is stopped by step `{}`, an `{k}`, which completes as soon as its condition is evaluated: point `stopped_by` at a step inside or after the branch", s.value));
                    }
                    Some(id)
                }
                None => {
                    let hint = closest(&s.value, self.by_id.keys())
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    self.error(s.loc, format!("clock `{name}` is stopped by step `{}`, which does not exist{hint}", s.value));
                    None
                }
            });
            let handler_scope = root.with("clock");
            let key = self.src.key_of(def.loc, name);
            let on_warning = if c.on_warning.is_empty() {
                None
            } else {
                if c.warn_before.is_empty() {
                    self.error(key, format!("clock `{name}` has `on_warning` steps but no `warn_before` times: add `warn_before`, such as `[24h]`"));
                }
                self.lower_block(&c.on_warning, None, &handler_scope, key, "on_warning")
            };
            let on_breach = if c.on_breach.is_empty() {
                None
            } else {
                self.lower_block(&c.on_breach, None, &handler_scope, key, "on_breach")
            };
            if let Some(anchor) = anchor {
                out.push(plan::Clock {
                    name: name.clone(),
                    title: c
                        .title
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_else(|| name.clone()),
                    anchor,
                    duration: c.duration.value,
                    when,
                    warn_before,
                    stopped_by,
                    on_warning,
                    on_breach,
                });
            }
        }
        out
    }

    /// A clock anchored on an input field needs that field, as a datetime.
    /// Returns false when it reported a problem.
    fn check_anchor(&mut self, clock: &str, anchor: &Sp<String>) -> bool {
        let text = super::super::template::strip_braces(&anchor.value)
            .unwrap_or(&anchor.value)
            .trim();
        let Some(field) = text.strip_prefix("input.") else {
            return true;
        };
        if !is_identifier(field) {
            return true;
        }
        let at = self.token_loc(anchor, &format!("input.{field}"), true);
        match self.input_fields.get(field) {
            None => {
                let hint = closest(field, self.input_fields.keys())
                    .map(|c| format!(" (did you mean `input.{c}`?)"))
                    .unwrap_or_default();
                self.error(at, format!("clock `{clock}` is anchored on `input.{field}`, which is not declared in `input`{hint}: the anchor must be a `type: datetime` input field"));
                false
            }
            Some(authored::FieldType::Datetime) => true,
            Some(other) => {
                self.error(at, format!("clock `{clock}` is anchored on `input.{field}` of type {}: an anchor must be an instant; make the field `type: datetime`", type_name(*other)));
                false
            }
        }
    }

    /// Where a reference is written inside a template or an expression.
    pub(super) fn token_loc(&self, text: &Sp<String>, token: &str, is_expression: bool) -> Loc {
        match super::source::find_reference(&text.value, token, is_expression) {
            Some(i) => self.src.point_in(text.loc, &text.value, i, i + token.len()),
            None => text.loc,
        }
    }
}

/// The fields of a crontab line, with their ranges.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

const CRON_MACROS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// The first problem a person would fix in a schedule: `(start, end, why)`
/// with byte offsets into `text`. `None` when nothing simple is wrong.
fn cron_problem(text: &str) -> Option<(usize, usize, String)> {
    let fields: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|f| (f.as_ptr() as usize - text.as_ptr() as usize, f))
        .collect();
    if let [(start, word)] = fields.as_slice()
        && word.starts_with('@')
    {
        if CRON_MACROS.contains(word) {
            return None;
        }
        return Some((
            *start,
            start + word.len(),
            format!(
                "`{word}` is not a macro: use one of {}",
                CRON_MACROS.join(", ")
            ),
        ));
    }
    if fields.len() != 5 {
        let (start, end) = match (fields.first(), fields.last()) {
            (Some((s, _)), Some((e, w))) => (*s, e + w.len()),
            _ => (0, text.len()),
        };
        let extra = if fields.len() == 6 {
            " (seconds are not supported)"
        } else {
            ""
        };
        return Some((
            start,
            end,
            format!(
                "it has {} fields{extra}, and a schedule has 5: `minute hour day-of-month month day-of-week`, such as `0 7 15 1 *`",
                fields.len()
            ),
        ));
    }
    for ((start, field), (name, lo, hi)) in fields.iter().zip(CRON_FIELDS) {
        for (offset, number) in numbers(field) {
            let value: u32 = number.parse().unwrap_or(u32::MAX);
            let is_step = field[..offset].ends_with('/');
            if !is_step && !(lo..=hi).contains(&value) {
                let at = start + offset;
                return Some((
                    at,
                    at + number.len(),
                    format!("{number} is out of range for the {name} field ({lo}–{hi})"),
                ));
            }
        }
    }
    None
}

/// The runs of digits in a cron field, with their byte offsets.
fn numbers(field: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in field
        .char_indices()
        .chain(std::iter::once((field.len(), ' ')))
    {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let before = field[..s].chars().next_back();
                // `L`, `W` and `#` extensions carry numbers of their own.
                if !before.is_some_and(|b| b == '#' || b.is_ascii_alphabetic()) {
                    out.push((s, &field[s..i]));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_problems_point_at_the_field() {
        assert_eq!(cron_problem("0 7 15 1 *"), None);
        assert_eq!(cron_problem("@yearly"), None);
        assert_eq!(cron_problem("*/15 8-17 * * 1-5"), None);
        let (s, e, why) = cron_problem("0 7 15 13 *").unwrap();
        assert_eq!((s, e), (7, 9));
        assert!(why.contains("month"), "{why}");
        assert!(cron_problem("0 7 15 1").unwrap().2.contains("4 fields"));
        assert!(cron_problem("@yearli").unwrap().2.contains("not a macro"));
    }
}
