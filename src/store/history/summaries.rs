//! Weekly summaries sent (`serve --alert-weekly-summary`): one row per summary, so that the
//! next is due seven days after the last one even across restarts of the server.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::params;

use super::HistoryDb;
use crate::store::StoreError;

/// Schema version 7: the sent weekly summaries.
pub(crate) const V7: &str = "CREATE TABLE alert_summaries (
     id          INTEGER PRIMARY KEY,
     sent_at     TEXT    NOT NULL,
     sent_at_us  INTEGER NOT NULL,
     snapshot_id INTEGER NOT NULL,
     channels    INTEGER NOT NULL,
     delivered   INTEGER NOT NULL
 );";

impl HistoryDb {
    /// Records a summary sent at `sent_at` about snapshot `snapshot_id`, to `channels` channels
    /// of which `delivered` took it (the others left dead letters).
    pub(crate) fn record_summary(
        &self,
        sent_at: DateTime<Utc>,
        snapshot_id: i64,
        channels: usize,
        delivered: usize,
    ) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO alert_summaries (sent_at, sent_at_us, snapshot_id, channels, delivered)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                sent_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                sent_at.timestamp_micros(),
                snapshot_id,
                i64::try_from(channels).unwrap_or(i64::MAX),
                i64::try_from(delivered).unwrap_or(i64::MAX),
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// When the last summary was sent, if ever.
    pub(crate) fn last_summary_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.lock();
        let us: Option<i64> =
            conn.query_row("SELECT MAX(sent_at_us) FROM alert_summaries", [], |r| {
                r.get(0)
            })?;
        Ok(us.and_then(DateTime::from_timestamp_micros))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_last_summary_time_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let db = HistoryDb::open(&path).unwrap();
        assert_eq!(db.last_summary_at().unwrap(), None);
        let a = Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap();
        let b = Utc.with_ymd_and_hms(2026, 3, 8, 6, 0, 1).unwrap();
        db.record_summary(b, 9, 2, 2).unwrap();
        db.record_summary(a, 3, 1, 0).unwrap();
        drop(db);
        let db = HistoryDb::open(&path).unwrap();
        assert_eq!(db.last_summary_at().unwrap(), Some(b));
    }
}
