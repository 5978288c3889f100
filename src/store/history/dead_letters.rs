//! Dead letters: alerts still undelivered after their last attempt, kept in `history.db` beside
//! the snapshots they are about so an operator can see (`tagwarden alerts dead-letters`) and
//! resend what was missed. The row keeps the channel, the error and the exact body; never the
//! URL (a Slack URL is a secret) nor the signing secret.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use super::HistoryDb;
use crate::store::StoreError;

/// Schema version 6: the dead-letter table.
pub(crate) const V6: &str = "CREATE TABLE alert_dead_letters (
     id          INTEGER PRIMARY KEY,
     failed_at   TEXT    NOT NULL,
     channel     TEXT    NOT NULL,
     snapshot_id INTEGER NOT NULL,
     attempts    INTEGER NOT NULL,
     error       TEXT    NOT NULL,
     payload     TEXT    NOT NULL
 );";

/// An undelivered alert to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// When the last attempt failed.
    pub failed_at: DateTime<Utc>,
    /// `webhook` or `slack`.
    pub channel: String,
    /// The snapshot whose regression the alert announced.
    pub snapshot_id: i64,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// The JSON body that was not delivered.
    pub payload: Value,
}

/// A kept dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Its id in the store.
    pub id: i64,
    /// When the last attempt failed (RFC 3339, UTC).
    pub failed_at: String,
    /// `webhook` or `slack`.
    pub channel: String,
    /// The snapshot whose regression the alert announced.
    pub snapshot_id: i64,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// The JSON body that was not delivered.
    pub payload: Value,
}

/// Dead letters kept (the oldest are dropped beyond this).
pub(crate) const MAX_DEAD_LETTERS: i64 = 1000;

impl HistoryDb {
    /// Keeps an undelivered alert; its id. Only the newest `MAX_DEAD_LETTERS` are kept, so a
    /// receiver that stays down for months does not grow the file without bound.
    pub(crate) fn record_dead_letter(&self, d: &NewDeadLetter) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO alert_dead_letters
                 (failed_at, channel, snapshot_id, attempts, error, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                d.failed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                d.channel,
                d.snapshot_id,
                d.attempts,
                d.error,
                d.payload.to_string(),
            ],
        )?;
        let id = conn.last_insert_rowid();
        conn.execute(
            "DELETE FROM alert_dead_letters WHERE id <= ?1 - ?2",
            params![id, MAX_DEAD_LETTERS],
        )?;
        Ok(id)
    }

    /// The newest `limit` dead letters, newest first.
    pub(crate) fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select("ORDER BY id DESC LIMIT ?1", params![limit])
    }

    /// One dead letter.
    pub(crate) fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.select("WHERE id = ?1", params![id])?.pop())
    }

    /// How many dead letters are kept.
    pub(crate) fn dead_letter_count(&self) -> Result<u64, StoreError> {
        let conn = self.lock();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM alert_dead_letters", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Removes a dead letter once it was delivered; whether it was there.
    pub(crate) fn remove_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        let conn = self.lock();
        Ok(conn.execute("DELETE FROM alert_dead_letters WHERE id = ?1", params![id])? > 0)
    }

    /// A resend failed again: its attempts grow by `attempts`, and the error and time are the
    /// new ones. Whether it was there.
    pub(crate) fn dead_letter_failed_again(
        &self,
        id: i64,
        attempts: u32,
        error: &str,
        failed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let changed = conn.execute(
            "UPDATE alert_dead_letters
             SET attempts = attempts + ?2, error = ?3, failed_at = ?4 WHERE id = ?1",
            params![
                id,
                attempts,
                error,
                failed_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ],
        )?;
        Ok(changed > 0)
    }

    fn select(
        &self,
        rest: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, failed_at, channel, snapshot_id, attempts, error, payload
             FROM alert_dead_letters {rest}"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                DeadLetter {
                    id: r.get(0)?,
                    failed_at: r.get(1)?,
                    channel: r.get(2)?,
                    snapshot_id: r.get(3)?,
                    attempts: r.get(4)?,
                    error: r.get(5)?,
                    payload: Value::Null,
                },
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, payload) = row?;
            d.payload = serde_json::from_str(&payload)
                .map_err(|e| StoreError::Sql(format!("dead letter {} is unreadable: {e}", d.id)))?;
            out.push(d);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn dead_letters_round_trip_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = HistoryDb::open(&dir.path().join("history.db")).unwrap();
        assert_eq!(db.dead_letters(10).unwrap(), vec![]);
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap();
        for (channel, n) in [("webhook", 1), ("slack", 2)] {
            db.record_dead_letter(&NewDeadLetter {
                failed_at: at,
                channel: channel.into(),
                snapshot_id: 7,
                attempts: n,
                error: "the receiver answered HTTP 500".into(),
                payload: json!({"n": n}),
            })
            .unwrap();
        }
        let got = db.dead_letters(10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            DeadLetter {
                id: 2,
                failed_at: "2026-03-01T06:00:00Z".into(),
                channel: "slack".into(),
                snapshot_id: 7,
                attempts: 2,
                error: "the receiver answered HTTP 500".into(),
                payload: json!({"n": 2}),
            }
        );
        assert_eq!(got[1].channel, "webhook");
        assert_eq!(db.dead_letters(1).unwrap().len(), 1);
    }

    #[test]
    fn only_the_newest_dead_letters_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = HistoryDb::open(&dir.path().join("history.db")).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap();
        for n in 0..MAX_DEAD_LETTERS + 3 {
            db.record_dead_letter(&NewDeadLetter {
                failed_at: at,
                channel: "webhook".into(),
                snapshot_id: n,
                attempts: 1,
                error: "down".into(),
                payload: json!({}),
            })
            .unwrap();
        }
        let kept = db.dead_letters(usize::MAX).unwrap();
        assert_eq!(kept.len() as i64, MAX_DEAD_LETTERS);
        assert_eq!(kept.last().map(|d| d.snapshot_id), Some(3));
    }

    #[test]
    fn resent_letters_are_removed_or_counted_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = HistoryDb::open(&dir.path().join("history.db")).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap();
        for n in 0..2 {
            db.record_dead_letter(&NewDeadLetter {
                failed_at: at,
                channel: "email".into(),
                snapshot_id: n,
                attempts: 3,
                error: "down".into(),
                payload: json!({"subject": "s", "text": "t"}),
            })
            .unwrap();
        }
        assert_eq!(db.dead_letter_count().unwrap(), 2);
        assert_eq!(db.dead_letter(1).unwrap().map(|d| d.snapshot_id), Some(0));
        assert_eq!(db.dead_letter(9).unwrap(), None);
        assert!(db.remove_dead_letter(1).unwrap());
        assert!(!db.remove_dead_letter(1).unwrap());
        let later = Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap();
        assert!(
            db.dead_letter_failed_again(2, 2, "still down", later)
                .unwrap()
        );
        assert!(!db.dead_letter_failed_again(1, 2, "gone", later).unwrap());
        let left = db.dead_letters(10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(
            (
                left[0].attempts,
                left[0].error.as_str(),
                left[0].failed_at.as_str()
            ),
            (5, "still down", "2026-03-02T06:00:00Z")
        );
        assert_eq!(db.dead_letter_count().unwrap(), 1);
    }
}
