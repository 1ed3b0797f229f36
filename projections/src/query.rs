//! What every list shares: pagination, sorting over a fixed set of columns, and the page it answers with.

use serde::Serialize;

/// The most rows one page holds.
pub const MAX_PER_PAGE: u32 = 500;
pub const DEFAULT_PER_PAGE: u32 = 50;

/// A list request: which page, how big, in what order, matching what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    /// A column name, `-column` for descending.
    pub sort: Option<String>,
    /// Free text, matched against the list's text columns.
    pub q: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            sort: None,
            q: None,
        }
    }
}

/// Why a list request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("page must be 1 or more, not {0}")]
    Page(i64),
    #[error("per_page must be from 1 to {MAX_PER_PAGE}, not {0}")]
    PerPage(i64),
    #[error("cannot sort by {field:?}; sortable: {allowed}")]
    Sort { field: String, allowed: String },
    #[error("{field} is not valid: {reason}")]
    Filter { field: &'static str, reason: String },
}

impl ListQuery {
    /// Checks bounds given as signed numbers (as a query string carries them).
    ///
    /// ```
    /// use cairn_projections::{ListQuery, QueryError};
    /// let q = ListQuery::new(Some(2), Some(25), Some("-name".into()), None).unwrap();
    /// assert_eq!(q.offset(), 25);
    /// assert_eq!(ListQuery::new(Some(0), None, None, None), Err(QueryError::Page(0)));
    /// ```
    pub fn new(
        page: Option<i64>,
        per_page: Option<i64>,
        sort: Option<String>,
        q: Option<String>,
    ) -> Result<Self, QueryError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(i64::from(DEFAULT_PER_PAGE));
        if page < 1 || page > i64::from(u32::MAX) {
            return Err(QueryError::Page(page));
        }
        if per_page < 1 || per_page > i64::from(MAX_PER_PAGE) {
            return Err(QueryError::PerPage(per_page));
        }
        Ok(Self {
            page: page as u32,
            per_page: per_page as u32,
            sort: sort.filter(|s| !s.is_empty()),
            q: q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()),
        })
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    /// The ORDER BY clause for `sort`, which must name one of `allowed`; `default` otherwise.
    pub fn order_by(&self, allowed: &[&str], default: &str) -> Result<String, QueryError> {
        self.order_by_then(allowed, default, "rowid")
    }

    /// [`ListQuery::order_by`] with another tie-break than `rowid`: a table `WITHOUT ROWID` breaks ties on its
    /// primary key.
    pub fn order_by_then(&self, allowed: &[&str], default: &str, tiebreak: &str) -> Result<String, QueryError> {
        let Some(sort) = &self.sort else {
            return Ok(default.to_owned());
        };
        let (field, dir) = match sort.strip_prefix('-') {
            Some(f) => (f, "DESC"),
            None => (sort.as_str(), "ASC"),
        };
        match allowed.iter().find(|a| **a == field) {
            // The tie-break keeps pages stable when the sorted column repeats.
            Some(col) => Ok(format!("{col} {dir}, {tiebreak} {dir}")),
            None => Err(QueryError::Sort {
                field: field.to_owned(),
                allowed: allowed.join(", "),
            }),
        }
    }

    /// The `q` text as a LIKE pattern, with LIKE's own wildcards escaped (`ESCAPE '\'`).
    pub fn like(&self) -> Option<String> {
        self.q.as_ref().map(|q| {
            let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

/// A time filter in the log's own form, or the reason it is not one.
pub fn time(field: &'static str, input: &str) -> Result<String, QueryError> {
    cairn_events::normalize_time(input).map_err(|reason| QueryError::Filter { field, reason })
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
    pub pages: i64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, query: &ListQuery, total: i64) -> Self {
        let per = i64::from(query.per_page);
        Self {
            items,
            page: query.page,
            per_page: query.per_page,
            total,
            pages: (total + per - 1) / per,
        }
    }
}

/// Builds a WHERE clause from optional conditions and their parameters.
#[derive(Default)]
pub struct Conditions {
    clauses: Vec<String>,
    pub params: Vec<rusqlite::types::Value>,
}

impl Conditions {
    pub fn add(&mut self, clause: &str, params: impl IntoIterator<Item = rusqlite::types::Value>) {
        self.clauses.push(clause.to_owned());
        self.params.extend(params);
    }

    /// `column = value`, where `value` must be one of `allowed` (a filter on an enumerated column).
    pub fn one_of(&mut self, field: &'static str, value: &str, allowed: &[&str]) -> Result<(), QueryError> {
        if !allowed.contains(&value) {
            return Err(QueryError::Filter {
                field,
                reason: format!("one of {}", allowed.join(", ")),
            });
        }
        self.equals(field, value);
        Ok(())
    }

    /// `field = value`, for a value already checked (a status the caller parsed).
    pub fn equals(&mut self, field: &'static str, value: &str) {
        self.add(
            &format!("{field} = ?"),
            [rusqlite::types::Value::Text(value.to_owned())],
        );
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Runs a count and a page query over one table with the same conditions.
pub fn paged<T>(
    conn: &rusqlite::Connection,
    table: &str,
    columns: &str,
    conditions: &Conditions,
    order_by: &str,
    query: &ListQuery,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Page<T>> {
    let where_sql = conditions.sql();
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {table} {where_sql}"),
        rusqlite::params_from_iter(conditions.params.iter()),
        |r| r.get(0),
    )?;
    let mut params = conditions.params.clone();
    params.push(rusqlite::types::Value::Integer(i64::from(query.per_page)));
    params.push(rusqlite::types::Value::Integer(query.offset()));
    let items = conn
        .prepare(&format!(
            "SELECT {columns} FROM {table} {where_sql} ORDER BY {order_by} LIMIT ? OFFSET ?"
        ))?
        .query_map(rusqlite::params_from_iter(params), map)?
        .collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(Page::new(items, query, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_and_sort_is_whitelisted() {
        assert_eq!(ListQuery::new(Some(0), None, None, None), Err(QueryError::Page(0)));
        assert_eq!(ListQuery::new(Some(-3), None, None, None), Err(QueryError::Page(-3)));
        assert_eq!(ListQuery::new(None, Some(0), None, None), Err(QueryError::PerPage(0)));
        assert_eq!(
            ListQuery::new(None, Some(1_000_000), None, None),
            Err(QueryError::PerPage(1_000_000))
        );
        let q = ListQuery::new(Some(3), Some(10), Some("-name".into()), Some("  a_b ".into())).unwrap();
        assert_eq!(q.offset(), 20);
        assert_eq!(q.order_by(&["name"], "x").unwrap(), "name DESC, rowid DESC");
        assert_eq!(q.like().unwrap(), "%a\\_b%");
        let bad = ListQuery {
            sort: Some("name; DROP TABLE clients".into()),
            ..ListQuery::default()
        };
        assert!(matches!(bad.order_by(&["name"], "x"), Err(QueryError::Sort { .. })));
        assert_eq!(Page::new(vec![1], &ListQuery::default(), 101).pages, 3);
    }
}
