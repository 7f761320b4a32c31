//! Delivery: publishing events, one supervised actor per endpoint, signing,
//! retries and timeouts. Not built yet (see the delivery issue); the HTTP
//! layer and the aggregate already leave room for it:
//! * configs carry `retry_count`, `timeout_seconds`, `headers`, `secret` and
//!   `profile`, and their read model has the delivery statistics columns;
//! * test results arrive as `WebhookConfigCommand::RecordTest`, and automatic
//!   deactivations as `Deactivate { reason: Failing | Gone }`.
