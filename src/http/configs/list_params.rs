//! Query parameters of the configs API lists: `limit`, `after_id`,
//! `before_id`, `state`, and `date_created` filters.
use super::error::ConfigsError;
use aggregates::webhook_config::ConfigState;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use projections::paging::Cursor;
use std::collections::HashMap;

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 1000;

pub struct ListParams {
    pub limit: i64,
    pub cursor: Cursor,
    pub states: Vec<String>,
    pub created_from: Option<i64>,
    pub created_until: Option<i64>,
}

pub fn parse(query_string: &str) -> Result<ListParams, ConfigsError> {
    let query: HashMap<String, String> = url::form_urlencoded::parse(query_string.as_bytes())
        .into_owned()
        .collect();
    let id_param = |name: &str| -> Result<Option<i64>, ConfigsError> {
        query
            .get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ConfigsError::invalid_parameter(name, "must be an integer id"))
            })
            .transpose()
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ConfigsError::invalid_parameter(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                )
            })?,
    };
    let cursor = match (id_param("after_id")?, id_param("before_id")?) {
        (Some(_), Some(_)) => {
            return Err(ConfigsError::invalid_parameter(
                "before_id",
                "cannot be combined with after_id",
            ))
        }
        (Some(after), None) => Cursor::After(after),
        (None, Some(before)) => Cursor::Before(before),
        (None, None) => Cursor::Start,
    };
    let mut states = Vec::new();
    if let Some(raw) = query.get("state") {
        for state in raw.split(',').map(str::trim) {
            if ConfigState::parse(state).is_none() {
                return Err(ConfigsError::invalid_parameter(
                    "state",
                    format!("'{state}' is not one of new, valid, invalid, deactivated"),
                ));
            }
            states.push(state.to_owned());
        }
    }
    let (mut created_from, mut created_until): (Option<i64>, Option<i64>) = (None, None);
    let mut lower = |bound: i64| created_from = Some(created_from.map_or(bound, |b| b.max(bound)));
    let mut upper_bounds = Vec::new();
    for (name, value) in &query {
        let Some(operator) = date_operator(name) else {
            continue;
        };
        let (start, span) = parse_instant(value).ok_or_else(|| {
            ConfigsError::invalid_parameter(
                name,
                format!("'{value}' is not an ISO 8601 date or date-time"),
            )
        })?;
        match operator {
            "exact" => {
                lower(start);
                upper_bounds.push(start + span);
            }
            "gt" => lower(start + span),
            "gte" => lower(start),
            "lt" => upper_bounds.push(start),
            "lte" => upper_bounds.push(start + span),
            _ => unreachable!("date_operator returns known operators"),
        }
    }
    for bound in upper_bounds {
        created_until = Some(created_until.map_or(bound, |b| b.min(bound)));
    }
    Ok(ListParams {
        limit,
        cursor,
        states,
        created_from,
        created_until,
    })
}

/// `date_created` → exact; `date_created__gt` or `date_created[gt]` → gt; …
fn date_operator(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix("date_created")?;
    let operator = if rest.is_empty() {
        "exact"
    } else {
        rest.strip_prefix("__")
            .or_else(|| rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?
    };
    ["exact", "gt", "gte", "lt", "lte"]
        .into_iter()
        .find(|known| *known == operator)
}

/// The start of an instant (µs) and how long it lasts at its precision: a
/// day for `2026-11-22`, a second for `2026-11-22T10:25:05Z`.
fn parse_instant(raw: &str) -> Option<(i64, i64)> {
    const SECOND: i64 = 1_000_000;
    const DAY: i64 = 86_400 * SECOND;
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some((at.with_timezone(&Utc).timestamp() * SECOND, SECOND));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(raw, format) {
            return Some((at.and_utc().timestamp() * SECOND, SECOND));
        }
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    Some((
        day.and_hms_opt(0, 0, 0)?.and_utc().timestamp() * SECOND,
        DAY,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_filters_in_both_spellings() {
        assert_eq!(date_operator("date_created"), Some("exact"));
        assert_eq!(date_operator("date_created__gte"), Some("gte"));
        assert_eq!(date_operator("date_created[lt]"), Some("lt"));
        assert_eq!(date_operator("date_created__between"), None);
        assert_eq!(date_operator("state"), None);
    }

    #[test]
    fn instants_and_their_precision() {
        let (start, span) = parse_instant("2026-11-22T10:25:05Z").unwrap();
        assert_eq!(span, 1_000_000);
        assert_eq!(parse_instant("2026-11-22T10:25:05+00:00").unwrap().0, start);
        assert_eq!(parse_instant("2026-11-22T10:25:05").unwrap().0, start);
        assert_eq!(parse_instant("2026-11-22").unwrap().1, 86_400_000_000);
        assert!(parse_instant("yesterday").is_none());
    }

    #[test]
    fn limits_and_cursors() {
        assert!(parse("limit=0").is_err());
        assert!(parse("limit=1001").is_err());
        assert_eq!(parse("limit=1000").unwrap().limit, 1000);
        assert!(parse("after_id=1&before_id=2").is_err());
        assert!(parse("state=gone").is_err());
        assert_eq!(parse("state=new,valid").unwrap().states, ["new", "valid"]);
    }
}
