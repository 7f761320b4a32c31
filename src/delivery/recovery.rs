//! Bulk recovery: every delivery to one endpoint that ended `failed` in a
//! time window is sent again, with a fresh retry budget, by a background
//! task (a row of `tasks`, type `webhook.recover`) that reports how many
//! it found and sent; how they ended is counted from the deliveries
//! themselves (`recovered_by`). Memory stays bounded however many there
//! are: they are taken [`BATCH`] at a time, in id order.
use super::publish::Publisher;
use super::supervisor::SupervisorHandle;
use aggregates::values::ConfigId;
use projections::deliveries::DeliveryStore;
use projections::deliveries::{TaskState, TaskStore, TaskType};
use serde_json::json;
use std::time::Duration;

const BATCH: i64 = 500;
/// A breath between batches for the endpoint's actor and the database.
const PAUSE: Duration = Duration::from_millis(20);

/// What to recover.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    pub task: i64,
    pub config_id: ConfigId,
    /// Deliveries that ended in `[since, until)`, µs since the epoch.
    pub since: i64,
    pub until: i64,
}

/// Creates a recovery of config `config_id`'s deliveries that failed in
/// `window` (µs) as a task (`webhook.recover`) and runs it in the
/// background; returns the task's id.
pub async fn begin(
    publisher: &Publisher,
    tasks: &TaskStore,
    (organisation, key_id): (i64, Option<i64>),
    config_id: ConfigId,
    (since, until): (i64, i64),
) -> Result<i64, projections::Error> {
    let task = tasks
        .create(
            organisation,
            key_id,
            TaskType::WebhookRecover,
            config_id.get(),
        )
        .await?;
    start(
        Recovery {
            task,
            config_id,
            since,
            until,
        },
        publisher.store().clone(),
        tasks.clone(),
        publisher.supervisor().clone(),
    );
    Ok(task)
}

/// Runs `recovery` in the background; its task row tells how it goes.
fn start(recovery: Recovery, store: DeliveryStore, tasks: TaskStore, supervisor: SupervisorHandle) {
    tokio::spawn(async move {
        let window = json!({ "since": recovery.since, "until": recovery.until });
        let outcome = run(recovery, &store, &tasks, &supervisor).await;
        let (state, found, error) = match &outcome {
            Ok(found) => (TaskState::Completed, *found, None),
            Err((found, error)) => (TaskState::Failed, *found, Some(error.to_string())),
        };
        let results = json!({ "found": found, "sent": found, "window": window });
        if let Err(error) = tasks
            .progress(recovery.task, state, &results, error.as_deref())
            .await
        {
            tracing::error!(task = recovery.task, %error, "cannot record a recovery's end");
        }
    });
}

/// Sends every batch on; returns how many it found (also on failure).
async fn run(
    recovery: Recovery,
    store: &DeliveryStore,
    tasks: &TaskStore,
    supervisor: &SupervisorHandle,
) -> Result<i64, (i64, projections::Error)> {
    let mut found = 0_i64;
    let mut after = 0_i64;
    loop {
        let batch = store
            .recover_batch(
                recovery.config_id,
                (recovery.since, recovery.until),
                after,
                recovery.task,
                BATCH,
            )
            .await
            .map_err(|error| (found, error))?;
        let (deliveries, last) = batch;
        let Some(last) = last else {
            return Ok(found);
        };
        found += deliveries.len() as i64;
        supervisor.enqueue_again(deliveries);
        let results = json!({ "found": found, "sent": found });
        tasks
            .progress(recovery.task, TaskState::Processing, &results, None)
            .await
            .map_err(|error| (found, error))?;
        after = last;
        tokio::time::sleep(PAUSE).await;
    }
}
