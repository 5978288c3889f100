//! The virtual-tag tables of `history.db`: tags, rules, the generation counter and review
//! feedback. The file's one migration list (`store::history_db::MIGRATIONS`) takes this SQL as
//! its versions 2 and 3.

/// Version 2 — virtual tags: governed tags kept on top of the cloud's own.
pub(crate) const V2: &str = "CREATE TABLE vt_rules (
             id               INTEGER PRIMARY KEY,
             name             TEXT    NOT NULL,
             priority         INTEGER NOT NULL,
             enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
             trusted          INTEGER NOT NULL CHECK (trusted IN (0, 1)),
             spec             TEXT    NOT NULL,
             created_by       TEXT    NOT NULL,
             created_at       TEXT    NOT NULL,
             updated_at       TEXT    NOT NULL,
             deleted          INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
             matches          INTEGER NOT NULL DEFAULT 0,
             last_run_at      TEXT,
             last_run_matches INTEGER
         );
         CREATE UNIQUE INDEX vt_rules_name ON vt_rules (name) WHERE deleted = 0;
         CREATE UNIQUE INDEX vt_rules_priority ON vt_rules (priority) WHERE deleted = 0;
         CREATE TABLE vt_tags (
             id              INTEGER PRIMARY KEY,
             resource_id     TEXT    NOT NULL,
             key             TEXT    NOT NULL,
             value           TEXT    NOT NULL,
             source          TEXT    NOT NULL
                 CHECK (source IN ('manual', 'rule', 'suggestion', 'import')),
             confidence      REAL    NOT NULL CHECK (confidence BETWEEN 0 AND 1),
             status          TEXT    NOT NULL
                 CHECK (status IN ('pending', 'approved', 'denied', 'superseded')),
             rule_id         INTEGER,
             reason          TEXT    NOT NULL,
             override_native INTEGER NOT NULL CHECK (override_native IN (0, 1)),
             evidence        TEXT    NOT NULL DEFAULT '[]'
                 CHECK (json_valid(evidence) AND json_type(evidence) = 'array'),
             created_by      TEXT    NOT NULL,
             created_at      TEXT    NOT NULL,
             decided_by      TEXT,
             decided_at      TEXT,
             decision_reason TEXT,
             superseded_by   INTEGER,
             CONSTRAINT vt_denied_is_decided CHECK (status <> 'denied' OR decided_at IS NOT NULL),
             CONSTRAINT vt_superseded_has_successor
                 CHECK ((status = 'superseded') = (superseded_by IS NOT NULL))
         );
         CREATE INDEX vt_tags_status ON vt_tags (status);
         CREATE INDEX vt_tags_resource_key ON vt_tags (resource_id, key);
         CREATE INDEX vt_tags_rule ON vt_tags (rule_id);
         CREATE UNIQUE INDEX vt_tags_one_approved ON vt_tags (resource_id, key)
             WHERE status = 'approved';
         CREATE UNIQUE INDEX vt_tags_one_pending ON vt_tags (resource_id, key)
             WHERE status = 'pending';
         CREATE TABLE vt_generation (
             id         INTEGER PRIMARY KEY CHECK (id = 1),
             generation INTEGER NOT NULL
         );
         INSERT INTO vt_generation (id, generation) VALUES (1, 0);
         CREATE TABLE vt_feedback (
             source   TEXT    PRIMARY KEY,
             approved INTEGER NOT NULL DEFAULT 0,
             denied   INTEGER NOT NULL DEFAULT 0
         );";

/// Version 3 — who the server verified the author of a virtual tag, decision or rule to be,
/// beside the name the caller gave (`created_by`, `decided_by`). Older rows have none.
pub(crate) const V3: &str = "ALTER TABLE vt_tags ADD COLUMN created_by_principal TEXT;
         ALTER TABLE vt_tags ADD COLUMN decided_by_principal TEXT;
         ALTER TABLE vt_rules ADD COLUMN created_by_principal TEXT;";

/// Version 5 — promotion of approved virtual tags to real cloud tags. `vt_tags` is rebuilt
/// (SQLite cannot change a CHECK) so a tag can end `promoted`: written to the cloud and
/// verified there, kept for history, no longer overlaid. A plan is the exact diff per ARN with
/// the fingerprint of its inputs; `promotion_entries` holds one row per ARN, with what became
/// of it once applied.
pub(crate) const V5: &str = "CREATE TABLE vt_tags_v5 (
             id                   INTEGER PRIMARY KEY,
             resource_id          TEXT    NOT NULL,
             key                  TEXT    NOT NULL,
             value                TEXT    NOT NULL,
             source               TEXT    NOT NULL
                 CHECK (source IN ('manual', 'rule', 'suggestion', 'import')),
             confidence           REAL    NOT NULL CHECK (confidence BETWEEN 0 AND 1),
             status               TEXT    NOT NULL
                 CHECK (status IN ('pending', 'approved', 'denied', 'superseded', 'promoted')),
             rule_id              INTEGER,
             reason               TEXT    NOT NULL,
             override_native      INTEGER NOT NULL CHECK (override_native IN (0, 1)),
             evidence             TEXT    NOT NULL DEFAULT '[]'
                 CHECK (json_valid(evidence) AND json_type(evidence) = 'array'),
             created_by           TEXT    NOT NULL,
             created_at           TEXT    NOT NULL,
             decided_by           TEXT,
             decided_at           TEXT,
             decision_reason      TEXT,
             superseded_by        INTEGER,
             created_by_principal TEXT,
             decided_by_principal TEXT,
             promoted_by_plan     INTEGER,
             CONSTRAINT vt_denied_is_decided CHECK (status <> 'denied' OR decided_at IS NOT NULL),
             CONSTRAINT vt_superseded_has_successor
                 CHECK ((status = 'superseded') = (superseded_by IS NOT NULL)),
             CONSTRAINT vt_promoted_has_plan
                 CHECK ((status = 'promoted') = (promoted_by_plan IS NOT NULL))
         );
         INSERT INTO vt_tags_v5 (id, resource_id, key, value, source, confidence, status,
             rule_id, reason, override_native, evidence, created_by, created_at, decided_by,
             decided_at, decision_reason, superseded_by, created_by_principal,
             decided_by_principal)
         SELECT id, resource_id, key, value, source, confidence, status, rule_id, reason,
             override_native, evidence, created_by, created_at, decided_by, decided_at,
             decision_reason, superseded_by, created_by_principal, decided_by_principal
         FROM vt_tags;
         DROP TABLE vt_tags;
         ALTER TABLE vt_tags_v5 RENAME TO vt_tags;
         CREATE INDEX vt_tags_status ON vt_tags (status);
         CREATE INDEX vt_tags_resource_key ON vt_tags (resource_id, key);
         CREATE INDEX vt_tags_rule ON vt_tags (rule_id);
         CREATE UNIQUE INDEX vt_tags_one_approved ON vt_tags (resource_id, key)
             WHERE status = 'approved';
         CREATE UNIQUE INDEX vt_tags_one_pending ON vt_tags (resource_id, key)
             WHERE status = 'pending';
         CREATE TABLE promotion_plans (
             id                    INTEGER PRIMARY KEY,
             status                TEXT    NOT NULL
                 CHECK (status IN ('planned', 'approved', 'applying', 'applied')),
             fingerprint           TEXT    NOT NULL,
             selection             TEXT    NOT NULL CHECK (json_valid(selection)),
             summary               TEXT    NOT NULL CHECK (json_valid(summary)),
             created_by            TEXT    NOT NULL,
             created_by_principal  TEXT    NOT NULL,
             created_at            TEXT    NOT NULL,
             approved_by           TEXT,
             approved_by_principal TEXT,
             approved_at           TEXT,
             approval_reason       TEXT,
             applied_by_principal  TEXT,
             applied_at            TEXT,
             CONSTRAINT promotion_approved_has_approver
                 CHECK (status = 'planned' OR approved_by_principal IS NOT NULL),
             CONSTRAINT promotion_applied_has_time
                 CHECK ((status = 'applied') = (applied_at IS NOT NULL))
         );
         CREATE TABLE promotion_entries (
             plan_id  INTEGER NOT NULL REFERENCES promotion_plans (id),
             arn      TEXT    NOT NULL,
             entry    TEXT    NOT NULL CHECK (json_valid(entry)),
             outcome  TEXT,
             PRIMARY KEY (plan_id, arn)
         );";
