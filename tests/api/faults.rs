//! The fault harness in its short form (seconds each, debug build): real
//! nodes, a recording receiver, steady load and one fault per test; the
//! checker's invariants must hold — nothing accepted lost, never two
//! senders to one endpoint at once, FIFO in commit order, rate limits, good
//! signatures. The harness is the library `webhookd-bench faults` runs
//! (`src/bin/webhookd-bench/faults/`): CI checks what the soak measures.
//! One fault test at a time, beside the cluster tests' own turn.
//!
//! Not here yet, because they still fail (see the README's known gaps):
//! the frozen publisher and the partition (a rate-limited endpoint's
//! backlog left pending after its partition moved), and the rolling
//! restart (a rate-limited endpoint's hand-over on `SIGTERM`). Run them
//! with `webhookd-bench faults --quick --fault pause-publisher|partition|rebalance`.
#[path = "../../src/bin/webhookd-bench/faults/mod.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Fault, Settings};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn holds(fault: Fault) -> harness::checker::Findings {
    let _turn = ONE_AT_A_TIME.lock().await;
    let admin = std::env::var("WEBHOOKD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let settings = Settings::short(env!("CARGO_BIN_EXE_webhookd").into(), admin);
    let findings = harness::run(fault, &settings)
        .await
        .unwrap_or_else(|error| panic!("{}: {error:#}", fault.name()));
    assert!(findings.held(), "{findings:#?}");
    assert!(findings.accepted > 0, "{findings:#?}");
    findings
}

#[actix_web::test]
async fn a_frozen_owner_loses_nothing_and_never_sends_beside_its_successor() {
    let findings = holds(Fault::PauseOwner).await;
    // The healthy nodes went on publishing.
    assert_eq!(findings.healthy_publish_errors, 0, "{findings:#?}");
}

#[actix_web::test]
async fn a_node_frozen_in_the_middle_of_its_database_work_stalls_nobody() {
    let findings = holds(Fault::PauseInTransaction).await;
    assert_eq!(findings.healthy_publish_errors, 0, "{findings:#?}");
}

#[actix_web::test]
async fn clocks_30_seconds_apart_change_nothing() {
    let findings = holds(Fault::ClockSkew).await;
    // Signed with the database's clock, not the skewed nodes' own.
    assert!(findings.max_signature_skew_s <= 2, "{findings:#?}");
}

#[actix_web::test]
async fn a_failover_to_a_synchronous_standby_loses_nothing() {
    holds(Fault::Failover).await;
}
