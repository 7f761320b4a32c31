//! Every transition and every rejection of the WebhookConfig state machine,
//! as given/when/then with cqrs-es's TestFramework.
use super::*;
use crate::values::UrlPolicy;
use crate::webhook_config::services::EventTypeCatalog;
use cqrs_es::test::TestFramework;
use std::sync::Arc;

type ConfigTest = TestFramework<WebhookConfig>;

struct FixedCatalog;

#[async_trait::async_trait]
impl EventTypeCatalog for FixedCatalog {
    async fn known_event_types(&self) -> Result<Vec<String>, String> {
        Ok(vec!["invoice.paid".into(), "webhook_config.test".into()])
    }
}

struct BrokenCatalog;

#[async_trait::async_trait]
impl EventTypeCatalog for BrokenCatalog {
    async fn known_event_types(&self) -> Result<Vec<String>, String> {
        Err("database is down".into())
    }
}

fn test() -> ConfigTest {
    TestFramework::with(WebhookConfigServices::new(Arc::new(FixedCatalog)))
}

fn url(raw: &str) -> WebhookUrl {
    WebhookUrl::parse(raw, &UrlPolicy::production()).unwrap()
}

fn secret(byte: u8) -> WebhookSecret {
    WebhookSecret::from_key_bytes(&[byte; 32])
}

fn events(names: &[&str]) -> SubscribedEvents {
    SubscribedEvents::parse(names).unwrap()
}

fn new_config(active: bool) -> NewWebhookConfig {
    NewWebhookConfig {
        id: ConfigId::new(7),
        organisation: OrganisationId::new(1),
        profile: Profile::V1,
        url: url("https://example.com/hook"),
        name: ConfigName::parse("billing").unwrap(),
        events: events(&["invoice.paid"]),
        headers: CustomHeaders::default(),
        retry_count: RetryCount::default(),
        timeout_seconds: TimeoutSeconds::default(),
        secret: secret(1),
        active,
        rate_limit: RateLimit::UNLIMITED,
        ordering: DeliveryOrdering::None,
    }
}

fn created() -> WebhookConfigEvent {
    let new = new_config(true);
    WebhookConfigEvent::Created {
        id: new.id,
        organisation: new.organisation,
        profile: new.profile,
        url: new.url,
        name: new.name,
        events: new.events,
        headers: new.headers,
        retry_count: new.retry_count,
        timeout_seconds: new.timeout_seconds,
        secret: new.secret,
    }
}

fn deactivated(reason: DeactivationReason) -> WebhookConfigEvent {
    WebhookConfigEvent::Deactivated { reason }
}

fn tested(success: bool) -> WebhookConfigEvent {
    WebhookConfigEvent::Tested {
        success,
        status_code: Some(if success { 200 } else { 500 }),
        error: None,
        task_id: Some("t1".into()),
    }
}

fn outcome(success: bool) -> TestOutcome {
    TestOutcome {
        success,
        status_code: Some(if success { 200 } else { 500 }),
        error: None,
        task_id: Some("t1".into()),
    }
}

// --- creation -------------------------------------------------------------

#[tokio::test]
async fn create_records_created() {
    test()
        .given_no_previous_events()
        .when_async(WebhookConfigCommand::Create(new_config(true)))
        .await
        .then_expect_events(vec![created()]);
}

#[tokio::test]
async fn create_inactive_records_created_then_deactivated_by_owner() {
    test()
        .given_no_previous_events()
        .when_async(WebhookConfigCommand::Create(new_config(false)))
        .await
        .then_expect_events(vec![created(), deactivated(DeactivationReason::Owner)]);
}

#[tokio::test]
async fn create_twice_is_rejected() {
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Create(new_config(true)))
        .await
        .then_expect_error(WebhookConfigError::AlreadyExists);
}

#[tokio::test]
async fn create_after_delete_is_rejected() {
    test()
        .given(vec![created(), WebhookConfigEvent::Deleted {}])
        .when_async(WebhookConfigCommand::Create(new_config(true)))
        .await
        .then_expect_error(WebhookConfigError::AlreadyExists);
}

#[tokio::test]
async fn create_with_unknown_event_type_names_the_valid_ones() {
    let mut new = new_config(true);
    new.events = events(&["invoice.paid", "invoice.lost"]);
    test()
        .given_no_previous_events()
        .when_async(WebhookConfigCommand::Create(new))
        .await
        .then_expect_error(WebhookConfigError::UnknownEventTypes {
            unknown: vec!["invoice.lost".into()],
            valid: vec!["invoice.paid".into(), "webhook_config.test".into()],
        });
}

#[tokio::test]
async fn wildcard_needs_no_catalog() {
    let mut new = new_config(true);
    new.events = SubscribedEvents::all();
    let result =
        TestFramework::<WebhookConfig>::with(WebhookConfigServices::new(Arc::new(BrokenCatalog)))
            .given_no_previous_events()
            .when_async(WebhookConfigCommand::Create(new))
            .await
            .inspect_result();
    assert!(result.is_ok());
}

#[tokio::test]
async fn unreadable_catalog_rejects_named_subscriptions() {
    TestFramework::<WebhookConfig>::with(WebhookConfigServices::new(Arc::new(BrokenCatalog)))
        .given_no_previous_events()
        .when_async(WebhookConfigCommand::Create(new_config(true)))
        .await
        .then_expect_error(WebhookConfigError::CatalogUnavailable(
            "database is down".into(),
        ));
}

// --- commands on configs that do not exist --------------------------------

#[tokio::test]
async fn commands_on_absent_or_deleted_configs_are_not_found() {
    let commands = || {
        vec![
            WebhookConfigCommand::Update(ConfigChanges::default()),
            WebhookConfigCommand::RecordTest(outcome(true)),
            WebhookConfigCommand::Deactivate {
                reason: DeactivationReason::Owner,
            },
            WebhookConfigCommand::Reactivate,
            WebhookConfigCommand::RotateSecret {
                secret: secret(2),
                previous_expires_at: None,
            },
            WebhookConfigCommand::Delete,
        ]
    };
    for command in commands() {
        test()
            .given_no_previous_events()
            .when_async(command)
            .await
            .then_expect_error(WebhookConfigError::NotFound);
    }
    for command in commands() {
        test()
            .given(vec![created(), WebhookConfigEvent::Deleted {}])
            .when_async(command)
            .await
            .then_expect_error(WebhookConfigError::NotFound);
    }
}

// --- updates --------------------------------------------------------------

#[tokio::test]
async fn url_change_records_url_updated_and_resets_to_new() {
    let changes = ConfigChanges {
        url: Some(url("https://example.org/new")),
        ..Default::default()
    };
    test()
        .given(vec![created(), tested(true)])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .then_expect_events(vec![WebhookConfigEvent::UrlUpdated {
            url: url("https://example.org/new"),
        }]);
    let config = WebhookConfig::from_events([
        created(),
        tested(true),
        WebhookConfigEvent::UrlUpdated {
            url: url("https://example.org/new"),
        },
    ]);
    assert_eq!(config.state, ConfigState::New);
}

#[tokio::test]
async fn url_change_keeps_a_deactivated_config_deactivated() {
    let config = WebhookConfig::from_events([
        created(),
        deactivated(DeactivationReason::Owner),
        WebhookConfigEvent::UrlUpdated {
            url: url("https://example.org/new"),
        },
    ]);
    assert_eq!(config.state, ConfigState::Deactivated);
}

#[tokio::test]
async fn settings_change_records_only_what_changed() {
    let changes = ConfigChanges {
        name: Some(ConfigName::parse("billing").unwrap()), // unchanged
        retry_count: Some(RetryCount::parse(5).unwrap()),
        timeout_seconds: Some(TimeoutSeconds::parse(10).unwrap()),
        ..Default::default()
    };
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .then_expect_events(vec![WebhookConfigEvent::SettingsUpdated(SettingsChanged {
            retry_count: Some(RetryCount::parse(5).unwrap()),
            timeout_seconds: Some(TimeoutSeconds::parse(10).unwrap()),
            ..Default::default()
        })]);
}

fn limit(n: i64) -> RateLimit {
    RateLimit::parse(Some(n)).unwrap()
}

#[tokio::test]
async fn a_rate_limit_is_a_settings_change_set_and_cleared() {
    let created_limited = NewWebhookConfig {
        rate_limit: limit(50),
        ..new_config(true)
    };
    test()
        .given_no_previous_events()
        .when_async(WebhookConfigCommand::Create(created_limited))
        .await
        .then_expect_events(vec![
            created(),
            WebhookConfigEvent::SettingsUpdated(SettingsChanged {
                rate_limit: Some(limit(50)),
                ..Default::default()
            }),
        ]);
    let limited = WebhookConfigEvent::SettingsUpdated(SettingsChanged {
        rate_limit: Some(limit(50)),
        ..Default::default()
    });
    test()
        .given(vec![created(), limited.clone()])
        .when_async(WebhookConfigCommand::Update(ConfigChanges {
            rate_limit: Some(RateLimit::UNLIMITED),
            ..Default::default()
        }))
        .await
        .then_expect_events(vec![WebhookConfigEvent::SettingsUpdated(SettingsChanged {
            rate_limit: Some(RateLimit::UNLIMITED),
            ..Default::default()
        })]);
    let config = WebhookConfig::from_events([created(), limited]);
    assert_eq!(config.rate_limit.per_second(), Some(50));
    assert_eq!(
        WebhookConfig::from_events([created()])
            .rate_limit
            .per_second(),
        None
    );
    for bad in [0, -1, 10_001] {
        assert!(RateLimit::parse(Some(bad)).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn fifo_ordering_is_a_settings_change_recorded_once() {
    let created_fifo = NewWebhookConfig {
        ordering: DeliveryOrdering::Fifo,
        ..new_config(true)
    };
    let fifo = WebhookConfigEvent::SettingsUpdated(SettingsChanged {
        ordering: Some(DeliveryOrdering::Fifo),
        ..Default::default()
    });
    test()
        .given_no_previous_events()
        .when_async(WebhookConfigCommand::Create(created_fifo))
        .await
        .then_expect_events(vec![created(), fifo.clone()]);
    test()
        .given(vec![created(), fifo.clone()])
        .when_async(WebhookConfigCommand::Update(ConfigChanges {
            ordering: Some(DeliveryOrdering::Fifo),
            ..Default::default()
        }))
        .await
        .then_expect_events(vec![]);
    let config = WebhookConfig::from_events([created(), fifo]);
    assert_eq!(config.ordering, DeliveryOrdering::Fifo);
    assert_eq!(
        WebhookConfig::from_events([created()]).ordering,
        DeliveryOrdering::None
    );
}

#[tokio::test]
async fn an_update_that_changes_nothing_records_nothing() {
    let changes = ConfigChanges {
        url: Some(url("https://example.com/hook")),
        active: Some(true),
        ..Default::default()
    };
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn update_with_unknown_event_type_is_rejected() {
    let changes = ConfigChanges {
        events: Some(events(&["nope.never"])),
        ..Default::default()
    };
    let result = test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .inspect_result();
    assert!(matches!(
        result,
        Err(WebhookConfigError::UnknownEventTypes { .. })
    ));
}

#[tokio::test]
async fn update_active_false_deactivates_by_owner() {
    let changes = ConfigChanges {
        active: Some(false),
        ..Default::default()
    };
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .then_expect_events(vec![deactivated(DeactivationReason::Owner)]);
}

#[tokio::test]
async fn update_active_true_reactivates() {
    let changes = ConfigChanges {
        active: Some(true),
        ..Default::default()
    };
    test()
        .given(vec![created(), deactivated(DeactivationReason::Failing)])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .then_expect_events(vec![WebhookConfigEvent::Reactivated {}]);
}

#[tokio::test]
async fn update_url_and_deactivate_together_in_order() {
    let changes = ConfigChanges {
        url: Some(url("https://example.org/x")),
        active: Some(false),
        ..Default::default()
    };
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Update(changes))
        .await
        .then_expect_events(vec![
            WebhookConfigEvent::UrlUpdated {
                url: url("https://example.org/x"),
            },
            deactivated(DeactivationReason::Owner),
        ]);
}

// --- tests ----------------------------------------------------------------

#[tokio::test]
async fn successful_test_makes_valid() {
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::RecordTest(outcome(true)))
        .await
        .then_expect_events(vec![tested(true)]);
    assert_eq!(
        WebhookConfig::from_events([created(), tested(true)]).state,
        ConfigState::Valid
    );
}

#[tokio::test]
async fn failed_test_makes_invalid() {
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::RecordTest(outcome(false)))
        .await
        .then_expect_events(vec![tested(false)]);
    assert_eq!(
        WebhookConfig::from_events([created(), tested(false)]).state,
        ConfigState::Invalid
    );
}

#[tokio::test]
async fn an_invalid_config_can_be_tested_again() {
    test()
        .given(vec![created(), tested(false)])
        .when_async(WebhookConfigCommand::RecordTest(outcome(true)))
        .await
        .then_expect_events(vec![tested(true)]);
}

#[tokio::test]
async fn testing_a_deactivated_config_is_rejected() {
    test()
        .given(vec![created(), deactivated(DeactivationReason::Owner)])
        .when_async(WebhookConfigCommand::RecordTest(outcome(true)))
        .await
        .then_expect_error(WebhookConfigError::TestWhileDeactivated);
}

// --- deactivation and reactivation ---------------------------------------

#[tokio::test]
async fn deactivate_from_each_live_state() {
    for given in [
        vec![created()],
        vec![created(), tested(true)],
        vec![created(), tested(false)],
    ] {
        for reason in [
            DeactivationReason::Owner,
            DeactivationReason::Failing,
            DeactivationReason::Gone,
        ] {
            test()
                .given(given.clone())
                .when_async(WebhookConfigCommand::Deactivate { reason })
                .await
                .then_expect_events(vec![deactivated(reason)]);
        }
    }
}

#[tokio::test]
async fn deactivating_twice_is_rejected() {
    test()
        .given(vec![created(), deactivated(DeactivationReason::Owner)])
        .when_async(WebhookConfigCommand::Deactivate {
            reason: DeactivationReason::Failing,
        })
        .await
        .then_expect_error(WebhookConfigError::AlreadyDeactivated);
}

#[tokio::test]
async fn reactivate_returns_to_new() {
    test()
        .given(vec![created(), deactivated(DeactivationReason::Gone)])
        .when_async(WebhookConfigCommand::Reactivate)
        .await
        .then_expect_events(vec![WebhookConfigEvent::Reactivated {}]);
    let config = WebhookConfig::from_events([
        created(),
        tested(true),
        deactivated(DeactivationReason::Gone),
        WebhookConfigEvent::Reactivated {},
    ]);
    assert_eq!(config.state, ConfigState::New);
    assert_eq!(config.deactivation_reason, None);
}

#[tokio::test]
async fn reactivating_an_active_config_is_rejected() {
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::Reactivate)
        .await
        .then_expect_error(WebhookConfigError::NotDeactivated);
}

// --- secrets and deletion -------------------------------------------------

fn rotated(n: u8, previous_expires_at: Option<i64>) -> WebhookConfigEvent {
    WebhookConfigEvent::SecretRotated {
        secret: secret(n),
        previous_expires_at,
    }
}

#[tokio::test]
async fn rotate_secret_records_the_new_secret_and_the_old_ones_expiry() {
    test()
        .given(vec![created()])
        .when_async(WebhookConfigCommand::RotateSecret {
            secret: secret(9),
            previous_expires_at: Some(1_000),
        })
        .await
        .then_expect_events(vec![rotated(9, Some(1_000))]);
    let config = WebhookConfig::from_events([created(), rotated(9, None)]);
    assert_eq!(config.secret, Some(secret(9)));
    assert!(
        config.previous_secrets.is_empty(),
        "no overlap: gone at once"
    );
}

#[test]
fn previous_secrets_are_kept_newest_first_and_at_most_five() {
    let original = match created() {
        WebhookConfigEvent::Created { secret, .. } => secret,
        _ => unreachable!(),
    };
    let config = WebhookConfig::from_events([created(), rotated(2, Some(10))]);
    assert_eq!(config.secret, Some(secret(2)));
    assert_eq!(
        config.previous_secrets,
        vec![PreviousSecret {
            secret: original,
            expires_at: 10
        }]
    );
    let mut events = vec![created()];
    events.extend((2..=9).map(|n| rotated(n, Some(i64::from(n)))));
    let config = WebhookConfig::from_events(events);
    let kept: Vec<i64> = config
        .previous_secrets
        .iter()
        .map(|p| p.expires_at)
        .collect();
    // Secret n was replaced by the rotation to n + 1, which set expiry n + 1.
    assert_eq!(kept, vec![9, 8, 7, 6, 5]);
    assert_eq!(config.previous_secrets[0].secret, secret(8));
}

/// Events written before overlaps existed read as "ended at once".
#[test]
fn an_old_secret_rotated_event_has_no_overlap() {
    let old: WebhookConfigEvent = serde_json::from_value(serde_json::json!({
        "SecretRotated": {"secret": "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}
    }))
    .unwrap();
    assert!(matches!(
        old,
        WebhookConfigEvent::SecretRotated {
            previous_expires_at: None,
            ..
        }
    ));
}

#[tokio::test]
async fn delete_records_deleted_from_any_state() {
    for given in [
        vec![created()],
        vec![created(), tested(false)],
        vec![created(), deactivated(DeactivationReason::Owner)],
    ] {
        test()
            .given(given)
            .when_async(WebhookConfigCommand::Delete)
            .await
            .then_expect_events(vec![WebhookConfigEvent::Deleted {}]);
    }
    let config = WebhookConfig::from_events([created(), WebhookConfigEvent::Deleted {}]);
    assert_eq!(config.lifecycle, Lifecycle::Deleted);
}

#[test]
fn events_serialize_without_secrets_in_debug() {
    let shown = format!("{:?}", created());
    assert!(!shown.contains(&secret(1).expose()[6..]));
}
