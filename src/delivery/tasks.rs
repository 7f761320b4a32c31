//! Tasks of the configs API: a `webhook_config.test` task is one test
//! delivery; the delivery engine moves it from `pending` to `processing` to
//! `succeeded` or `failed`.
use super::store::AttemptRecord;
use projections::db::now_micros;
use projections::{on_pool, Db, Error};
use serde_json::json;

pub const WEBHOOK_CONFIG_TEST: &str = "webhook_config.test";
/// A v1 bulk recovery (see `delivery::recovery`).
pub const WEBHOOK_RECOVER: &str = "webhook.recover";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub organisation: i64,
    pub key_id: Option<i64>,
    #[sqlx(rename = "type")]
    pub task_type: String,
    pub target: i64,
    pub state: String,
    pub results: Option<String>,
    pub error: Option<String>,
    pub date_created: i64,
    pub date_started: Option<i64>,
    pub date_completed: Option<i64>,
}

const COLUMNS: &str = "id, organisation, key_id, type, target, state, results, error, \
    date_created, date_started, date_completed";

#[derive(Clone)]
pub struct TaskStore {
    db: Db,
}

impl TaskStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// A new pending test task for config `target`.
    pub async fn create_test(
        &self,
        organisation: i64,
        key_id: Option<i64>,
        target: i64,
    ) -> Result<i64, Error> {
        self.create(organisation, key_id, WEBHOOK_CONFIG_TEST, target)
            .await
    }

    /// A new pending task of `task_type` for config `target`.
    pub async fn create(
        &self,
        organisation: i64,
        key_id: Option<i64>,
        task_type: &str,
        target: i64,
    ) -> Result<i64, Error> {
        let sql = "INSERT INTO tasks (organisation, key_id, type, target, state, date_created) \
                   VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id";
        Ok(on_pool!(&self.db, |pool| sqlx::query_scalar(sql)
            .bind(organisation)
            .bind(key_id)
            .bind(task_type)
            .bind(target)
            .bind(now_micros())
            .fetch_one(pool)
            .await?))
    }

    /// Where a long task stands: `processing` with its results so far, or
    /// `completed`/`failed` (then also when it ended).
    pub async fn progress(
        &self,
        id: i64,
        state: &str,
        results: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let now = now_micros();
        let ended = (state != "processing").then_some(now);
        let sql = "UPDATE tasks SET state = $2, results = $3, error = $4, \
                   date_started = COALESCE(date_started, $5), date_completed = $6 WHERE id = $1";
        on_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(state)
                .bind(results.to_string())
                .bind(error)
                .bind(now)
                .bind(ended)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn mark_processing(&self, id: i64) -> Result<(), Error> {
        let sql = "UPDATE tasks SET state = 'processing', date_started = $2 \
                   WHERE id = $1 AND state = 'pending'";
        on_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(now_micros())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a test task with the attempt's outcome.
    pub async fn complete(&self, id: i64, attempt: &AttemptRecord) -> Result<(), Error> {
        let results = json!({
            "success": attempt.success,
            "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms,
            "response": attempt.response_body,
            "error": attempt.error,
        })
        .to_string();
        let (state, error) = if attempt.success {
            ("succeeded", None)
        } else {
            (
                "failed",
                Some(match attempt.status_code {
                    Some(code) => format!("the receiver answered {code}"),
                    None => attempt
                        .error
                        .clone()
                        .unwrap_or_else(|| "the test delivery failed".into()),
                }),
            )
        };
        let now = now_micros();
        let sql = "UPDATE tasks SET state = $2, results = $3, error = $4, \
                   date_started = COALESCE(date_started, $5), date_completed = $5 WHERE id = $1";
        on_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(state)
                .bind(&results)
                .bind(error.as_deref())
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn find(&self, organisation: i64, id: i64) -> Result<Option<TaskRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE organisation = $1 AND id = $2");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(organisation)
            .bind(id)
            .fetch_optional(pool)
            .await?))
    }

    /// A page of an organisation's tasks in id order, after/before a cursor;
    /// returns the rows, whether more follow, and the total.
    pub async fn list(
        &self,
        organisation: i64,
        cursor: projections::paging::Cursor,
        limit: i64,
    ) -> Result<(Vec<TaskRow>, bool, i64), Error> {
        let page = projections::paging::CursorPage::new(cursor, limit);
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks WHERE organisation = $1 AND {} ORDER BY id {} LIMIT $3",
            page.condition("id", "$2"),
            page.order()
        );
        let count = "SELECT COUNT(*) FROM tasks WHERE organisation = $1";
        let (rows, total): (Vec<TaskRow>, i64) = on_pool!(&self.db, |pool| {
            let rows = sqlx::query_as(&sql)
                .bind(organisation)
                .bind(page.cursor_value())
                .bind(limit + 1)
                .fetch_all(pool)
                .await?;
            let total = sqlx::query_scalar(count)
                .bind(organisation)
                .fetch_one(pool)
                .await?;
            (rows, total)
        });
        let (rows, has_more) = page.finish(rows);
        Ok((rows, has_more, total))
    }
}
