//! After an attempt: retry, give up, or switch the endpoint off — and
//! record it all before the actor moves on (a crash before the record
//! leaves the delivery pending, so it is sent again: at-least-once).
use super::attempt::{self, AttemptResult};
use super::operational::OperationalWebhooks;
use super::settings::DeliverySettings;
use crate::cluster::{Fence, Ownership};
use crate::config_commands::{CommandError, CommandMetadata, ConfigCommands};
use aggregates::webhook_config::{
    DeactivationReason, TestOutcome, WebhookConfigCommand, WebhookConfigError,
};
use projections::deliveries::TaskStore;
use projections::deliveries::{
    DeliveryKind, DeliveryStore, EndpointConfig, NextStep, PendingDelivery,
};
use std::sync::Arc;
use std::time::Duration;

/// An event delivery that ended (a test's attempt is not a delivery of
/// the config's events).
fn count_ended(kind: DeliveryKind, next: NextStep) {
    let succeeded = match next {
        NextStep::Succeeded => true,
        NextStep::Failed => false,
        NextStep::RetryAt(_) => return,
    };
    if kind == DeliveryKind::Event {
        crate::telemetry::delivery_ended(succeeded);
    }
}

/// Back-off between tries to record an attempt while the database is away.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

/// What the endpoint actor does with the delivery next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Finished (delivered, or out of retries).
    Done,
    /// Try again after this wait.
    RetryIn(Duration),
    /// The config was switched off; nothing more goes to it.
    EndpointOff,
}

/// What an attempt needs besides its endpoint and its delivery: the
/// sending ([`Attempts::send`]) and the policy after it
/// ([`Attempts::settle`]: the record, retry or not, the consequences).
/// One for the node, shared by every endpoint's attempts; built by
/// `engine.rs` (the only other module that sees its parts).
pub(super) struct Attempts {
    pub(super) store: DeliveryStore,
    pub(super) tasks: TaskStore,
    pub(super) settings: DeliverySettings,
    pub(super) commands: ConfigCommands,
    /// Whether this node may still send (checked up to the last moment).
    pub(super) ownership: Ownership,
    /// Where `delivery.exhausted` notices go.
    pub(super) operational: OperationalWebhooks,
}

impl Attempts {
    /// The HTTP part of an attempt: what holds one of the endpoint's
    /// in-flight slots (the limit protects the receiver, not our database).
    pub async fn send(
        &self,
        client: &reqwest::Client,
        config: &EndpointConfig,
        delivery: &PendingDelivery,
    ) -> AttemptResult {
        if let Some(task) = delivery.task() {
            if let Err(error) = self.tasks.mark_processing(task).await {
                tracing::error!(task, %error, "cannot mark a task processing");
            }
        }
        let (ownership, config_id) = (self.ownership.clone(), delivery.config_id);
        let permit: attempt::SendPermit = Arc::new(move || ownership.owns(config_id));
        attempt::send(
            client,
            config,
            delivery,
            &self.settings.url_policy,
            &self.settings.clock,
            permit,
        )
        .await
    }

    /// Records what an attempt found out and decides what happens next.
    pub async fn settle(
        &self,
        config: &EndpointConfig,
        delivery: &PendingDelivery,
        result: AttemptResult,
        fence: Option<Fence>,
    ) -> Verdict {
        let task = delivery.task();
        let attempts_made = delivery.attempts + 1;
        let wait = result
            .retry_after
            .map(|asked| asked.min(self.settings.retry_schedule.max()))
            .unwrap_or_else(|| {
                self.settings
                    .retry_schedule
                    .wait_before(attempts_made as u32)
            });
        let next = if result.record.success {
            NextStep::Succeeded
        } else if delivery.kind == DeliveryKind::Test
            || result.gone
            || attempts_made > config.retry_count
        {
            NextStep::Failed
        } else {
            NextStep::RetryAt(result.record.attempted_at + wait.as_micros() as i64)
        };
        if result.gone {
            // Before the attempt is recorded: whoever sees the delivery
            // finished also sees the config deactivated.
            self.switch_off(config, DeactivationReason::Gone).await;
        }
        let run = match self.record(delivery, &result.record, next, fence).await {
            Ok(run) => {
                count_ended(delivery.kind, next);
                run
            }
            Err(error) => {
                // Not recorded: the delivery is still pending in the database.
                tracing::error!(delivery = delivery.id, %error, "cannot record an attempt");
                return Verdict::RetryIn(self.settings.watchdog_interval);
            }
        };
        if delivery.kind == DeliveryKind::Test {
            self.record_test(config, delivery, &result.record).await;
            // After `Tested`: a finished task means the config's state is final.
            if let Some(task) = task {
                if let Err(error) = self.tasks.complete(task, &result.record).await {
                    tracing::error!(task, %error, "cannot complete a task");
                }
            }
            return Verdict::Done;
        }
        // (A 410 ends it early: `endpoint.disabled` tells of that.)
        if next == NextStep::Failed && !result.gone {
            self.operational.delivery_exhausted(
                config,
                delivery,
                result.record.status_code,
                result.record.error.as_deref(),
            );
        }
        if result.gone {
            return Verdict::EndpointOff;
        }
        let failing_for = run
            .failing_since
            .map(|since| result.record.attempted_at - since)
            .unwrap_or_default();
        if !result.record.success
            && run.consecutive_failures >= self.settings.disable_after_failures
            && failing_for >= self.settings.disable_after.as_micros() as i64
        {
            self.switch_off(config, DeactivationReason::Failing).await;
            return Verdict::EndpointOff;
        }
        match next {
            NextStep::RetryAt(_) => Verdict::RetryIn(wait),
            NextStep::Succeeded | NextStep::Failed => Verdict::Done,
        }
    }

    /// Records an attempt, waiting out a database outage: the receiver
    /// has answered, and sending again because the answer could not be
    /// written yet would be a duplicate for nothing. The outcome waits here
    /// (in memory, with its attempt's slot: at most a few times the
    /// in-flight limit per endpoint, see the endpoint actor's `pump`),
    /// tried again with back-off until the database is back. Only a
    /// failure that is not an outage gives up (and the delivery goes again).
    async fn record(
        &self,
        delivery: &PendingDelivery,
        record: &projections::deliveries::AttemptRecord,
        next: NextStep,
        fence: Option<Fence>,
    ) -> Result<projections::deliveries::FailureRun, projections::Error> {
        let mut wait = RECORD_RETRY_FIRST;
        loop {
            match self
                .store
                .record_attempt(delivery, record, next, fence)
                .await
            {
                Err(error) if error.is_unavailable() || error.is_transient() => {
                    tracing::warn!(delivery = delivery.id, %error, ?wait,
                        "cannot record an attempt yet; keeping it to try again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RECORD_RETRY_MAX);
                }
                result => return result,
            }
        }
    }

    async fn record_test(
        &self,
        config: &EndpointConfig,
        delivery: &PendingDelivery,
        record: &projections::deliveries::AttemptRecord,
    ) {
        let outcome = TestOutcome {
            success: record.success,
            status_code: record.status_code,
            error: record.error.clone(),
            task_id: delivery.task_id.clone(),
        };
        let command = WebhookConfigCommand::RecordTest(outcome);
        match self
            .commands
            .execute(config.id, command, &CommandMetadata::system())
            .await
        {
            Ok(()) => {}
            // Deactivated or deleted while the test ran: nothing to record.
            Err(CommandError::Rejected(
                WebhookConfigError::TestWhileDeactivated | WebhookConfigError::NotFound,
            )) => {}
            Err(error) => tracing::error!(config = config.id.get(), %error, "cannot record a test"),
        }
    }

    async fn switch_off(&self, config: &EndpointConfig, reason: DeactivationReason) {
        let command = WebhookConfigCommand::Deactivate { reason };
        match self
            .commands
            .execute(config.id, command, &CommandMetadata::system())
            .await
        {
            Ok(()) => tracing::warn!(config = config.id.get(), ?reason, "endpoint deactivated"),
            Err(CommandError::Rejected(
                rejection @ (WebhookConfigError::AlreadyDeactivated | WebhookConfigError::NotFound),
            )) => tracing::debug!(config = config.id.get(), %rejection, "no deactivation needed"),
            Err(error) => tracing::error!(config = config.id.get(), %error, "cannot deactivate"),
        }
    }
}
