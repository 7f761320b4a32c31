//! The two migration trees (`migrations/sqlite`, `migrations/postgres`)
//! describe one schema: after both are applied, the same tables with the
//! same columns, each of the same kind (integer, text, boolean, real,
//! bytes) and the same nullability. A column added to one tree and
//! forgotten in the other fails here, not in production on the other
//! backend.
use crate::helpers::{Backend, TestApp};
use projections::Db;
use std::collections::BTreeMap;

/// Differences by design, each with its reason.
const BY_DESIGN: &[(&str, &str)] = &[
    // A cluster needs PostgreSQL: SQLite has no membership or leases.
    ("cluster_nodes", "*"),
    ("partition_leases", "*"),
    // SQLite assigns `position` in a trigger after the insert (gap-free),
    // so the column is nullable there; PostgreSQL's is an identity.
    ("events", "position"),
];

fn by_design(table: &str, column: &str) -> bool {
    BY_DESIGN
        .iter()
        .any(|(t, c)| *t == table && (*c == "*" || *c == column))
}

/// (table, column) → (kind, nullable).
type Schema = BTreeMap<(String, String), (&'static str, bool)>;

/// A column type as a kind both backends share.
fn kind(declared: &str) -> &'static str {
    let declared = declared.to_ascii_lowercase();
    if declared.contains("bool") {
        "boolean"
    } else if declared.contains("int") || declared == "serial" || declared == "bigserial" {
        "integer"
    } else if declared.contains("char") || declared.contains("text") || declared == "uuid" {
        "text"
    } else if declared.contains("real")
        || declared.contains("double")
        || declared.contains("float")
        || declared.contains("numeric")
    {
        "real"
    } else if declared.contains("blob") || declared.contains("bytea") {
        "bytes"
    } else if declared.contains("json") {
        // cqrs-es's event tables: `json` on PostgreSQL, text on SQLite.
        "text"
    } else {
        "other"
    }
}

async fn schema(db: &Db) -> Schema {
    let mut schema = Schema::new();
    match db {
        Db::Sqlite(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for table in tables {
                let columns: Vec<(String, String, bool, i64)> =
                    sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
                        .bind(&table)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                for (column, declared, not_null, pk) in columns {
                    // A primary key is NOT NULL on PostgreSQL whatever it says.
                    let nullable = !(not_null || pk > 0);
                    schema.insert((table.clone(), column), (kind(&declared), nullable));
                }
            }
        }
        Db::Postgres(pool) => {
            let columns: Vec<(String, String, String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 AND table_name NOT LIKE '\\_sqlx\\_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for (table, column, declared, nullable) in columns {
                schema.insert((table, column), (kind(&declared), nullable == "YES"));
            }
        }
    }
    schema
}

#[actix_web::test]
async fn both_migration_trees_describe_the_same_schema() {
    let sqlite = TestApp::spawn(Backend::Sqlite).await;
    let postgres = TestApp::spawn(Backend::Postgres).await;
    let (sqlite, postgres) = (schema(&sqlite.db).await, schema(&postgres.db).await);
    assert!(sqlite.len() > 50, "{sqlite:#?}");
    // Every exception still names something PostgreSQL has.
    for (table, column) in BY_DESIGN {
        assert!(
            postgres
                .keys()
                .any(|(t, c)| t == table && (*column == "*" || c == column)),
            "{table}.{column} is no longer there: drop its exception"
        );
    }
    let mut differences = Vec::new();
    for key in sqlite.keys().chain(postgres.keys()) {
        let (s, p) = (sqlite.get(key), postgres.get(key));
        if s != p && !by_design(&key.0, &key.1) {
            differences.push(format!("{}.{}: sqlite {s:?}, postgres {p:?}", key.0, key.1));
        }
    }
    differences.sort();
    differences.dedup();
    assert!(
        differences.is_empty(),
        "the migration trees differ:\n{}",
        differences.join("\n")
    );
}
