//! The layers of `src/` hold: every top-level module of the service crate
//! sits in one layer, and imports (`crate::module`) only modules of the
//! layers below its own — so no import runs upward and no cycle can form
//! between top-level modules. Below them all are the `projections` crate
//! (all storage) and the `aggregates` crate (the domain), whose crate
//! boundaries Cargo enforces. A new top-level module fails this test until
//! it is given a layer here.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. A module may import the modules of lower layers only.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations: connections, crypto, metrics, the sealed event store",
        &["database", "crypto", "telemetry", "sealed_event_store"],
    ),
    (
        "the change bus: what changed, to whoever listens",
        &["changes"],
    ),
    (
        "the cluster and the config commands",
        &["cluster", "config_commands"],
    ),
    ("the delivery engine", &["delivery"]),
    (
        "operator use cases and tools: admin, audit, listen",
        &["admin", "audit", "listen"],
    ),
    ("the use cases every dialect and the console call", &["app"]),
    ("HTTP dialects and the console", &["http"]),
    ("settings", &["settings"]),
    ("start-up", &["startup"]),
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layer of each top-level module.
fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, (_, modules))| modules.iter().map(move |m| (*m, layer)))
        .collect()
}

/// `src/`'s top-level modules (`lib.rs`'s `pub mod`/`mod` lines).
fn top_level_modules() -> Vec<String> {
    std::fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))
                .map(|rest| rest.trim_end_matches(';').to_owned())
        })
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules a file names after `crate::`, also inside
/// `crate::{a::X, b::Y}` groups.
fn crate_imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        // `webhookd::…` in a bin is not this; `somecrate::` neither.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

/// The top-level module a file of `src/` belongs to.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next().unwrap();
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let layers = layer_of();
    let unplaced: Vec<String> = top_level_modules()
        .into_iter()
        .filter(|m| !layers.contains_key(m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a layer in tests/layers.rs: {unplaced:?}"
    );
}

#[test]
fn no_import_runs_against_the_layers() {
    let layers = layer_of();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    for file in files {
        let module = module_of(&file);
        // The binaries (`main.rs`, `cli.rs`, `bin/`) are above every layer.
        let Some(&own) = layers.get(module.as_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for imported in crate_imports(&text) {
            if imported == module {
                continue;
            }
            if let Some(&theirs) = layers.get(imported.as_str()) {
                if theirs >= own {
                    upward.push(format!(
                        "{}: crate::{imported} ({}) from {module} ({})",
                        file.strip_prefix(src()).unwrap().display(),
                        LAYERS[theirs].0,
                        LAYERS[own].0,
                    ));
                }
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports against the layers (lowest first: {:?}):\n{}",
        LAYERS.iter().map(|(_, m)| m).collect::<Vec<_>>(),
        upward.join("\n")
    );
}

/// Database-specific code — SQL, the pools, which backend this is — lives
/// in the storage layer (`projections`) and in start-up; the delivery
/// engine, the use cases, the HTTP dialects and the operator tools above
/// it never name a database; nor do the cluster's rules (their rows and
/// channel are `projections::cluster`'s). `database` connects and
/// migrates: it is start-up's, like `startup` itself. (The command side's
/// event repository is `projections::event_store`'s, chosen there once.)
#[test]
fn no_sql_above_the_storage_layer() {
    let above_storage = [
        "delivery",
        "app",
        "http",
        "admin",
        "audit",
        "listen",
        "changes",
        "cluster",
        "telemetry",
        "crypto",
    ];
    let mut files = Vec::new();
    for module in above_storage {
        let dir = src().join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        let file = src().join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for database_specific in ["sqlx::", "on_pool!", "Db::Sqlite", "Db::Postgres"] {
                if code.contains(database_specific) {
                    found.push(format!(
                        "{}:{}: {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "database-specific code above the storage layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_import_reader_sees_grouped_and_plain_imports() {
    let text = "use crate::delivery::store::X;\nuse crate::{http::auth, changes};\nuse webhookd::crate_like::Y;\nlet a = somecrate::x;";
    assert_eq!(crate_imports(text), vec!["delivery", "http", "changes"]);
}
