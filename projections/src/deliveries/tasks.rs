//! Tasks of the configs API: a `webhook_config.test` task is one test
//! delivery; the delivery engine moves it from `pending` to `processing` to
//! `succeeded` or `failed`.
use super::store::AttemptRecord;
use crate::db::now_micros;
use crate::{on_pool, Db, Error};
use aggregates::webhook_config::UnknownValue;
use serde_json::json;

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskType {
    /// One test delivery of a config (the configs API's task).
    WebhookConfigTest,
    /// A v1 bulk recovery (see `delivery::recovery`).
    WebhookRecover,
}

impl TaskType {
    pub const ALL: [Self; 2] = [Self::WebhookConfigTest, Self::WebhookRecover];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookConfigTest => "webhook_config.test",
            Self::WebhookRecover => "webhook.recover",
        }
    }
}

/// Where a task stands. A test ends `succeeded` or `failed`, a recovery
/// `completed` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Processing,
    Succeeded,
    Completed,
    Failed,
}

impl TaskState {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Succeeded,
        Self::Completed,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// Stored as text: anything else is an unreadable row, an error.
impl TryFrom<String> for TaskType {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        UnknownValue::find(&Self::ALL, Self::as_str, "task type", value)
    }
}

/// Stored as text: anything else is an unreadable row, an error.
impl TryFrom<String> for TaskState {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        UnknownValue::find(&Self::ALL, Self::as_str, "task state", value)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub organisation: i64,
    pub key_id: Option<i64>,
    #[sqlx(rename = "type", try_from = "String")]
    pub task_type: TaskType,
    pub target: i64,
    #[sqlx(try_from = "String")]
    pub state: TaskState,
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
        self.create(organisation, key_id, TaskType::WebhookConfigTest, target)
            .await
    }

    /// A new pending task of `task_type` for config `target`.
    pub async fn create(
        &self,
        organisation: i64,
        key_id: Option<i64>,
        task_type: TaskType,
        target: i64,
    ) -> Result<i64, Error> {
        let sql = "INSERT INTO tasks (organisation, key_id, type, target, state, date_created) \
                   VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id";
        Ok(on_pool!(&self.db, |pool| sqlx::query_scalar(sql)
            .bind(organisation)
            .bind(key_id)
            .bind(task_type.as_str())
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
        state: TaskState,
        results: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let now = now_micros();
        let ended = (state != TaskState::Processing).then_some(now);
        let sql = "UPDATE tasks SET state = $2, results = $3, error = $4, \
                   date_started = COALESCE(date_started, $5), date_completed = $6 WHERE id = $1";
        on_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(state.as_str())
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
        });
        let (state, error) = if attempt.success {
            (TaskState::Succeeded, None)
        } else {
            (
                TaskState::Failed,
                Some(match attempt.status_code {
                    Some(code) => format!("the receiver answered {code}"),
                    None => attempt
                        .error
                        .clone()
                        .unwrap_or_else(|| "the test delivery failed".into()),
                }),
            )
        };
        self.progress(id, state, &results, error.as_deref()).await
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
        cursor: crate::paging::Cursor,
        limit: i64,
    ) -> Result<(Vec<TaskRow>, bool, i64), Error> {
        let page = crate::paging::CursorPage::new(cursor, limit);
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

#[cfg(test)]
mod tests {
    use super::{TaskState, TaskType};

    #[test]
    fn names_round_trip_and_anything_else_is_unreadable() {
        for kind in TaskType::ALL {
            assert_eq!(TaskType::try_from(kind.as_str().to_owned()).unwrap(), kind);
        }
        for state in TaskState::ALL {
            assert_eq!(
                TaskState::try_from(state.as_str().to_owned()).unwrap(),
                state
            );
        }
        let error = TaskState::try_from("done".to_owned()).unwrap_err();
        assert!(error.to_string().contains("done"), "{error}");
        assert!(TaskType::try_from("webhook.test".to_owned()).is_err());
    }
}
