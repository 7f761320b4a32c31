//! A crash between an event commit and its projection update loses nothing:
//! start-up brings the read model level with the log.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn start_up_repairs_missing_and_stale_rows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let lost = app
        .create_webhook(webhook_body("https://example.com/lost"))
        .await;
    let stale = app
        .create_webhook(webhook_body("https://example.com/stale"))
        .await;
    let stale_path = format!("/api/v1/webhooks/{}", stale["id"]);
    let response = app
        .request(Method::PATCH, &stale_path)
        .json(&json!({"name": "after", "retry_count": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Simulate the crash: one row never written, one left at its first version.
    app.execute_sql(&format!(
        "DELETE FROM webhook_configs WHERE id = {}",
        lost["id"]
    ))
    .await;
    app.execute_sql(&format!(
        "UPDATE webhook_configs SET name = 'before', retry_count = 3, version = 1 WHERE id = {}",
        stale["id"]
    ))
    .await;

    let restarted = app.restart().await;
    let get = |path: String| {
        app.client
            .get(format!("{restarted}{path}"))
            .bearer_auth(&app.key)
            .send()
    };
    let (status, shown) = status_and_json(
        get(format!("/api/v1/webhooks/{}", lost["id"]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["data"]["url"], "https://example.com/lost");
    assert_eq!(shown["data"]["secret"], lost["secret"]);
    let (_, shown) = status_and_json(get(stale_path).await.unwrap()).await;
    assert_eq!(shown["data"]["name"], "after");
    assert_eq!(shown["data"]["retry_count"], 7);
}

/// The read model's write after a command's commit fails (the database
/// stalled and cut the session): the command tries it once more before it
/// answers, and never answers success for a row that is not there — a
/// create once answered 404 for the config it had just stored. The fault
/// is a trigger on the read model's table: on PostgreSQL it fails the
/// first write only (a sequence does not roll back), so the retry
/// succeeds; on SQLite every write, so the answer is 503 and the config
/// appears once the trigger is gone and start-up catches up.
async fn a_command_answers_after_its_row_is_written(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    match backend {
        Backend::Postgres => {
            app.execute_sql("CREATE SEQUENCE projection_fault").await;
            app.execute_sql(
                "CREATE FUNCTION projection_fault() RETURNS trigger AS $$ BEGIN \
                 IF nextval('projection_fault') = 1 THEN RAISE EXCEPTION 'injected'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            .await;
            app.execute_sql(
                "CREATE TRIGGER projection_fault BEFORE INSERT ON webhook_configs \
                 FOR EACH ROW EXECUTE FUNCTION projection_fault()",
            )
            .await;
        }
        Backend::Sqlite => {
            app.execute_sql(
                "CREATE TRIGGER projection_fault BEFORE INSERT ON webhook_configs \
                 BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .await;
        }
    }
    let response = app
        .request(Method::POST, "/api/v1/webhooks")
        .json(&webhook_body("https://example.com/written"))
        .send()
        .await
        .unwrap();
    let (status, created) = status_and_json(response).await;
    match backend {
        Backend::Postgres => {
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let shown = app.webhook(created["data"]["id"].as_i64().unwrap()).await;
            assert_eq!(shown["url"], "https://example.com/written");
        }
        Backend::Sqlite => {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{created}");
            app.execute_sql("DROP TRIGGER projection_fault").await;
            let restarted = app.restart().await;
            let listed = app
                .client
                .get(format!("{restarted}/api/v1/webhooks"))
                .bearer_auth(&app.key)
                .send()
                .await
                .unwrap();
            let (_, listed) = status_and_json(listed).await;
            assert_eq!(listed["data"][0]["url"], "https://example.com/written");
        }
    }
}

on_both_backends!(
    start_up_repairs_missing_and_stale_rows,
    a_command_answers_after_its_row_is_written,
);
