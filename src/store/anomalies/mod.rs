//! Decisions on cost anomalies (in `history.db`): acknowledged, dismissed or planned, with who
//! decided (as given, and the principal the server verified), why and when.
//!
//! Rows are only ever inserted: a new decision on an anomaly is a new row, and the latest row
//! is the anomaly's status, so every change stays readable. Anomalies themselves are not
//! stored — they are recomputed from the costs, and their ids are stable (a hash of dimension,
//! value and day), which is what ties a decision to the anomaly on every later run.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, params, params_from_iter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::history_db::MIGRATIONS;

/// The tables, as migration 4 of `history.db`.
pub(crate) const V4: &str = "CREATE TABLE anomaly_decisions (
     id                   INTEGER PRIMARY KEY,
     anomaly_id           TEXT    NOT NULL,
     dimension            TEXT    NOT NULL,
     value                TEXT    NOT NULL,
     day                  TEXT    NOT NULL,
     decision             TEXT    NOT NULL,
     reason               TEXT    NOT NULL,
     decided_by           TEXT    NOT NULL,
     decided_by_principal TEXT    NOT NULL,
     decided_at           TEXT    NOT NULL,
     impact_micros        INTEGER NOT NULL
 );
 CREATE INDEX anomaly_decisions_anomaly ON anomaly_decisions (anomaly_id, id);";

/// Migration 9 of `history.db`: the anomalies an alert has announced, so the next scheduled
/// audit announces only new ones.
pub(crate) const V9: &str = "CREATE TABLE anomaly_announcements (
     anomaly_id   TEXT PRIMARY KEY,
     announced_at TEXT NOT NULL
 );";

/// What was decided about an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyDecision {
    /// Seen and being looked into (still a real anomaly).
    Acknowledged,
    /// Not a problem (a false alarm, or accepted as is).
    Dismissed,
    /// Expected spend: a launch, a migration, a load test.
    Planned,
}

impl AnomalyDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyDecision::Acknowledged => "acknowledged",
            AnomalyDecision::Dismissed => "dismissed",
            AnomalyDecision::Planned => "planned",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<AnomalyDecision> {
        [
            AnomalyDecision::Acknowledged,
            AnomalyDecision::Dismissed,
            AnomalyDecision::Planned,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnomalyDecision {
    pub anomaly_id: String,
    pub dimension: String,
    pub value: String,
    /// YYYY-MM-DD.
    pub day: String,
    pub decision: AnomalyDecision,
    pub reason: String,
    pub decided_by: String,
    pub decided_by_principal: String,
    pub impact_micros: i64,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnomalyDecisionRow {
    pub id: i64,
    pub anomaly_id: String,
    pub decision: AnomalyDecision,
    pub reason: String,
    /// Who decided, as the caller put it.
    pub decided_by: String,
    /// Who the server verified the caller to be.
    pub decided_by_principal: String,
    /// RFC 3339, UTC.
    pub decided_at: String,
}

pub(crate) struct AnomalyDb {
    conn: Mutex<Connection>,
}

impl AnomalyDb {
    /// Opens (creating and migrating) `history.db` for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<AnomalyDb, StoreError> {
        let conn = super::open(path, MIGRATIONS)?;
        Ok(AnomalyDb {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record(&self, d: &NewAnomalyDecision) -> Result<AnomalyDecisionRow, StoreError> {
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let conn = self.lock();
        conn.execute(
            "INSERT INTO anomaly_decisions (anomaly_id, dimension, value, day, decision, reason,
                 decided_by, decided_by_principal, decided_at, impact_micros)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                d.anomaly_id,
                d.dimension,
                d.value,
                d.day,
                d.decision.as_str(),
                d.reason,
                d.decided_by,
                d.decided_by_principal,
                at,
                d.impact_micros
            ],
        )?;
        Ok(AnomalyDecisionRow {
            id: conn.last_insert_rowid(),
            anomaly_id: d.anomaly_id.clone(),
            decision: d.decision,
            reason: d.reason.clone(),
            decided_by: d.decided_by.clone(),
            decided_by_principal: d.decided_by_principal.clone(),
            decided_at: at,
        })
    }

    /// The latest decision of each of these anomalies that has one.
    /// Which of `ids` an alert has announced.
    pub(crate) fn announced(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT anomaly_id FROM anomaly_announcements WHERE anomaly_id IN ({marks})"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(chunk), |r| r.get::<_, String>(0))?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Records that an alert announced `ids` (again is harmless).
    pub(crate) fn mark_announced(&self, ids: &[String]) -> Result<(), StoreError> {
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute(
                "INSERT OR IGNORE INTO anomaly_announcements (anomaly_id, announced_at)
                 VALUES (?1, ?2)",
                params![id, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn latest(&self, ids: &[String]) -> Result<Vec<AnomalyDecisionRow>, StoreError> {
        let conn = self.lock();
        let mut out = Vec::new();
        // SQLite binds at most 32,766 parameters; chunks stay well below.
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT id, anomaly_id, decision, reason, decided_by, decided_by_principal,
                        decided_at
                 FROM anomaly_decisions
                 WHERE id IN (SELECT MAX(id) FROM anomaly_decisions
                              WHERE anomaly_id IN ({marks}) GROUP BY anomaly_id)
                 ORDER BY id"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(chunk), |r| {
                let decision: String = r.get(2)?;
                Ok(AnomalyDecisionRow {
                    id: r.get(0)?,
                    anomaly_id: r.get(1)?,
                    decision: AnomalyDecision::parse(&decision)
                        .unwrap_or(AnomalyDecision::Acknowledged),
                    reason: r.get(3)?,
                    decided_by: r.get(4)?,
                    decided_by_principal: r.get(5)?,
                    decided_at: r.get(6)?,
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, d: AnomalyDecision) -> NewAnomalyDecision {
        NewAnomalyDecision {
            anomaly_id: id.into(),
            dimension: "service".into(),
            value: "EC2".into(),
            day: "2026-10-01".into(),
            decision: d,
            reason: "load test".into(),
            decided_by: "alice".into(),
            decided_by_principal: "local".into(),
            impact_micros: 5,
        }
    }

    /// An announced anomaly is remembered; marking it again is harmless.
    #[test]
    fn announcements_are_remembered_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnomalyDb::open(&dir.path().join("history.db")).unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(db.announced(&ids(&["anm-a"])).unwrap().is_empty());
        db.mark_announced(&ids(&["anm-a", "anm-b"])).unwrap();
        db.mark_announced(&ids(&["anm-a"])).unwrap();
        let mut seen = db.announced(&ids(&["anm-a", "anm-b", "anm-c"])).unwrap();
        seen.sort();
        assert_eq!(seen, ids(&["anm-a", "anm-b"]));
    }

    /// The latest decision wins; earlier ones stay in the table.
    #[test]
    fn latest_decision_per_anomaly() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnomalyDb::open(&dir.path().join("history.db")).unwrap();
        db.record(&decision("anm-a", AnomalyDecision::Acknowledged))
            .unwrap();
        db.record(&decision("anm-b", AnomalyDecision::Dismissed))
            .unwrap();
        let last = db
            .record(&decision("anm-a", AnomalyDecision::Planned))
            .unwrap();
        let rows = db
            .latest(&["anm-a".into(), "anm-b".into(), "anm-c".into()])
            .unwrap();
        let got: Vec<(&str, AnomalyDecision)> = rows
            .iter()
            .map(|r| (r.anomaly_id.as_str(), r.decision))
            .collect();
        assert_eq!(
            got,
            vec![
                ("anm-b", AnomalyDecision::Dismissed),
                ("anm-a", AnomalyDecision::Planned)
            ]
        );
        assert_eq!(rows[1], last);
        let count: i64 = db
            .lock()
            .query_row("SELECT COUNT(*) FROM anomaly_decisions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
    }
}
