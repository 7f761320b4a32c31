//! The v1 API's reads of configs, kept in memory until a config changes.
//!
//! A `GET /api/v1/webhooks/{id}` is one primary-key lookup, yet on
//! PostgreSQL it cost ~120 µs of the server's CPU per request (a round trip
//! through a backend: the profile had PostgreSQL at 93 % of a core for
//! 7 600 requests/s), and a list page read 25 rows and counted the whole
//! organisation. Rows by id, list pages and list totals are therefore
//! remembered, and forgotten by whoever changes them, after the commit:
//!
//! * a config command: [`ConfigReads::config_changed`] (the command side's
//!   notifier, after the projector wrote the row, before the command
//!   answers, so a read after a write sees the write);
//! * a batch of delivery attempts, which moves the configs' statistics:
//!   [`ConfigReads::stats_changed`] (the outcome writer).
//!
//! A load that raced a change is not stored (see [`InvalidatedCache`]).
//! Like the delivery actors, this assumes one webhookd process per database:
//! a `projections rebuild` run beside a live server is seen by it after its
//! next config change or restart.
use crate::cache::InvalidatedCache;
use crate::db::{Db, Error};
use crate::on_pool;
use crate::webhook_configs::{ConfigRow, COLUMNS};
use std::future::Future;
use std::sync::Arc;

/// (organisation, page, per page).
type PageKey = (i64, i64, i64);

#[derive(Clone, Default)]
pub struct ConfigReads {
    /// By id, whatever the organisation; `None`: no such row.
    rows: Arc<InvalidatedCache<i64, Option<Arc<ConfigRow>>>>,
    pages: Arc<InvalidatedCache<PageKey, Arc<Vec<ConfigRow>>>>,
    /// How many configs a list (by its filter) matches.
    totals: Arc<InvalidatedCache<String, i64>>,
}

impl ConfigReads {
    /// Config `id` was created, changed or deleted.
    pub fn config_changed(&self, id: Option<i64>) {
        match id {
            Some(id) => self.rows.forget(id),
            None => self.rows.invalidate(),
        }
        self.pages.invalidate();
        self.totals.invalidate();
    }

    /// The delivery statistics of these configs moved (lists show them too).
    pub fn stats_changed(&self, ids: impl IntoIterator<Item = i64>) {
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.rows.forget(id);
        }
        self.pages.invalidate();
    }

    /// One live (not deleted) config of an organisation.
    pub async fn find(
        &self,
        db: &Db,
        organisation: i64,
        id: i64,
    ) -> Result<Option<ConfigRow>, Error> {
        let row = self
            .rows
            .get_or_load(id, async {
                Ok::<_, Error>(
                    crate::webhook_configs::find_any(db, id)
                        .await?
                        .map(Arc::new),
                )
            })
            .await?;
        Ok(row
            .filter(|row| {
                // An operational webhook is reached through its
                // organisation only.
                row.organisation == organisation
                    && !row.deleted
                    && row.profile != aggregates::webhook_config::Profile::Operational
            })
            .map(|row| (*row).clone()))
    }

    /// A page of an organisation's live configs, newest first, and their
    /// total.
    pub async fn list_page(
        &self,
        db: &Db,
        organisation: i64,
        page: i64,
        per_page: i64,
    ) -> Result<(Arc<Vec<ConfigRow>>, i64), Error> {
        let rows = self
            .pages
            .get_or_load((organisation, page, per_page), async {
                let sql = format!(
                    "SELECT {COLUMNS} FROM webhook_configs \
                     WHERE organisation = $1 AND deleted = FALSE AND profile <> 'operational' \
                     ORDER BY id DESC LIMIT $2 OFFSET $3"
                );
                let offset = (page - 1).saturating_mul(per_page);
                let rows: Vec<ConfigRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
                    .bind(organisation)
                    .bind(per_page)
                    .bind(offset)
                    .fetch_all(pool)
                    .await?);
                let vault = crate::vault::of(db);
                let rows = rows
                    .into_iter()
                    .map(|row| crate::webhook_configs::opened(&vault, row))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, Error>(Arc::new(rows))
            })
            .await?;
        let total = self
            .total(format!("live {organisation}"), async {
                let sql =
                    "SELECT COUNT(*) FROM webhook_configs WHERE organisation = $1 AND deleted = FALSE AND profile <> 'operational'";
                Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
                    .bind(organisation)
                    .fetch_one(pool)
                    .await?))
            })
            .await?;
        Ok((rows, total))
    }

    /// The remembered count of a list, by a key naming its filter.
    pub(crate) async fn total<F>(&self, key: String, count: F) -> Result<i64, Error>
    where
        F: Future<Output = Result<i64, Error>>,
    {
        self.totals.get_or_load(key, count).await
    }
}
