//! The compliance-history tables of `history.db`: interned resources, tag sets and violation
//! sets, and snapshots whose members are a packed blob of references to them. The file's one
//! migration list (`store::history_db::MIGRATIONS`) takes this SQL as its version 1.

/// Version 1: the intern tables and the snapshots.
pub(crate) const V1: &str = "CREATE TABLE resources (
         id          INTEGER PRIMARY KEY,
         fingerprint BLOB    NOT NULL UNIQUE,
         rid         TEXT    NOT NULL,
         type        TEXT    NOT NULL,
         region      TEXT    NOT NULL,
         account     TEXT    NOT NULL,
         name        TEXT    NOT NULL
     );
     CREATE TABLE tag_sets (
         id          INTEGER PRIMARY KEY,
         fingerprint BLOB    NOT NULL UNIQUE,
         tags        TEXT    NOT NULL
     );
     CREATE TABLE violation_sets (
         id          INTEGER PRIMARY KEY,
         fingerprint BLOB    NOT NULL UNIQUE,
         labels      TEXT    NOT NULL
     );
     CREATE TABLE snapshots (
         id               INTEGER PRIMARY KEY,
         taken_at         TEXT    NOT NULL,
         taken_at_us      INTEGER NOT NULL,
         trigger          TEXT    NOT NULL,
         source           TEXT    NOT NULL,
         policy_hash      TEXT    NOT NULL,
         filters          TEXT    NOT NULL,
         filters_hash     TEXT    NOT NULL,
         resources        INTEGER NOT NULL,
         in_scope         INTEGER NOT NULL,
         compliant        INTEGER NOT NULL,
         violations       INTEGER NOT NULL,
         score_pct        REAL,
         native_score_pct REAL,
         spend_score_pct  REAL,
         counts           TEXT    NOT NULL,
         by_violation     TEXT    NOT NULL,
         members          BLOB    NOT NULL
     );
     CREATE INDEX snapshots_scope_time ON snapshots (filters_hash, taken_at_us);
     CREATE INDEX snapshots_time ON snapshots (taken_at_us);";

/// Version 10: resources and tag sets interned in compressed chunks (`chunks`), replacing one
/// row per entry. `intern_epoch` counts garbage collections, so a writer knows when the entries
/// it has in memory may have been removed. The rows of the version-1 tables are moved into
/// chunks (ids kept) when the history store first opens the file (`HistoryDb::open`).
pub(crate) const V10: &str = "CREATE TABLE resource_chunks (
         id       INTEGER PRIMARY KEY,
         first_id INTEGER NOT NULL,
         last_id  INTEGER NOT NULL,
         data     BLOB    NOT NULL
     );
     CREATE INDEX resource_chunks_last ON resource_chunks (last_id);
     CREATE TABLE tag_set_chunks (
         id       INTEGER PRIMARY KEY,
         first_id INTEGER NOT NULL,
         last_id  INTEGER NOT NULL,
         data     BLOB    NOT NULL
     );
     CREATE INDEX tag_set_chunks_last ON tag_set_chunks (last_id);
     CREATE TABLE intern_epoch (
         id    INTEGER PRIMARY KEY CHECK (id = 1),
         epoch INTEGER NOT NULL
     );
     INSERT INTO intern_epoch (id, epoch) VALUES (1, 0);";
