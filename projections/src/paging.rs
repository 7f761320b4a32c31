//! Cursor paging as the configs API (ricloud dialect) does it: items in
//! ascending id order, `after_id` for the ones after a cursor, `before_id` for
//! the ones just before it, `has_more` when the page was not the last in
//! that direction. A cursor need not name an existing row (a deleted one works).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Start,
    After(i64),
    Before(i64),
}

/// One page's query parts. The caller fetches `limit + 1` rows with
/// [`CursorPage::condition`] and [`CursorPage::order`], then calls
/// [`CursorPage::finish`].
pub struct CursorPage {
    cursor: Cursor,
    limit: usize,
}

impl CursorPage {
    pub fn new(cursor: Cursor, limit: i64) -> Self {
        Self {
            cursor,
            limit: limit.max(0) as usize,
        }
    }

    /// The SQL condition on `column`, with `placeholder` bound to [`Self::cursor_value`].
    pub fn condition(&self, column: &str, placeholder: &str) -> String {
        match self.cursor {
            Cursor::Start => format!("{column} > {placeholder}"),
            Cursor::After(_) => format!("{column} > {placeholder}"),
            Cursor::Before(_) => format!("{column} < {placeholder}"),
        }
    }

    pub fn cursor_value(&self) -> i64 {
        match self.cursor {
            Cursor::Start => 0,
            Cursor::After(id) | Cursor::Before(id) => id,
        }
    }

    /// Before a cursor, the rows nearest to it come first from the database.
    pub fn order(&self) -> &'static str {
        match self.cursor {
            Cursor::Before(_) => "DESC",
            _ => "ASC",
        }
    }

    /// Trims the extra row and puts the page in ascending order.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let has_more = rows.len() > self.limit;
        rows.truncate(self.limit);
        if matches!(self.cursor, Cursor::Before(_)) {
            rows.reverse();
        }
        (rows, has_more)
    }
}
