//! Svix's lists: `?limit&iterator&order`, answered as `{data, iterator,
//! prevIterator, done}`. `iterator` is the id of the last item of the
//! page (the next page starts after it); `prevIterator` is `-` and the id
//! of the first (the previous page ends before it).
use super::error::{SvixError, ValidationItem};
use actix_web::HttpRequest;
use projections::paging::Cursor;
use serde::Serialize;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 250;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// A page whose items have the ids `ids` (in the page's order).
    pub fn page(data: Vec<T>, id: impl Fn(&T) -> String, done: bool) -> Self {
        let iterator = data.last().map(&id);
        let prev_iterator = data.first().map(|first| format!("-{}", id(first)));
        Self {
            data,
            iterator,
            prev_iterator,
            done,
        }
    }
}

/// The query string as name/value pairs (a repeated name is repeated).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(req: &HttpRequest) -> Self {
        Self(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, empty included (an empty boolean, number
    /// or time is refused like any other that does not parse).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a list parameter, repeated or comma-separated.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name || n == &format!("{name}[]"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, SvixError> {
        match self.get(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(invalid(name, "must be true or false")),
        }
    }

    pub fn time(&self, name: &str) -> Result<Option<i64>, SvixError> {
        self.get(name)
            .map(|raw| {
                super::parse_time(raw).ok_or_else(|| invalid(name, "must be an RFC 3339 time"))
            })
            .transpose()
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, SvixError> {
        self.get(name)
            .map(|raw| raw.parse().map_err(|_| invalid(name, "must be an integer")))
            .transpose()
    }

    /// `limit` (1–250, default 50), `iterator`, `order`.
    pub fn paging(&self, default_descending: bool) -> Result<Paging, SvixError> {
        let limit = match self.int("limit")? {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => return Err(invalid("limit", "must be between 1 and 250")),
        };
        let descending = match self.get("order") {
            None => default_descending,
            Some("ascending") => false,
            Some("descending") => true,
            Some(_) => return Err(invalid("order", "must be ascending or descending")),
        };
        let (iterator, backwards) = match self.get("iterator") {
            None | Some("") => (None, false),
            Some(raw) => match raw.strip_prefix('-') {
                Some(id) => (Some(id.to_owned()), true),
                None => (Some(raw.to_owned()), false),
            },
        };
        Ok(Paging {
            limit,
            descending,
            iterator,
            backwards,
        })
    }
}

pub fn invalid(name: &str, msg: &str) -> SvixError {
    SvixError::invalid(vec![ValidationItem::query(name, msg)])
}

/// Where a page starts and which way it goes.
pub struct Paging {
    pub limit: i64,
    pub descending: bool,
    /// The id the page starts after (or, `backwards`, ends before).
    pub iterator: Option<String>,
    pub backwards: bool,
}

impl Paging {
    /// For lists keyed by a number (`app_12`, `ep_7`): the cursor of an
    /// ascending page query, and whether its rows must be turned round.
    /// An iterator that is not such an id starts from the beginning.
    pub fn numeric(&self, prefix: &str) -> Result<(Cursor, bool), SvixError> {
        let key = match &self.iterator {
            None => None,
            Some(raw) => Some(
                projections::svix::parse_numeric_id(prefix, raw)
                    .ok_or_else(|| invalid("iterator", "is not an iterator of this list"))?,
            ),
        };
        // Going "forward" through a descending list is going down the ids.
        let down = self.descending != self.backwards;
        let cursor = match (key, down) {
            (None, false) => Cursor::Start,
            (None, true) => Cursor::Before(i64::MAX),
            (Some(id), false) => Cursor::After(id),
            (Some(id), true) => Cursor::Before(id),
        };
        Ok((cursor, self.descending))
    }

    /// `done` of a page that found `has_more` in the direction it went.
    pub fn done(&self, has_more: bool) -> bool {
        // A page back always has the page it came from after it.
        !has_more && !self.backwards
    }
}
