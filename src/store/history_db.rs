//! `history.db` holds three stores, compliance snapshots, undelivered alerts and sent weekly summaries (`history`), virtual tags
//! (`virtual_tags`) and decisions on cost anomalies (`anomalies`), under one schema version: both open the file with this one migration list,
//! so they agree on its version (`TooNew` compares against the highest). Each store keeps the
//! SQL of its own tables in its `schema` module.

use super::{anomalies, history, virtual_tags};

/// The migrations of `history.db`, in version order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, history::schema::V1),
    (2, virtual_tags::schema::V2),
    (3, virtual_tags::schema::V3),
    (4, anomalies::V4),
    (5, virtual_tags::schema::V5),
    (6, history::dead_letters::V6),
    (7, history::summaries::V7),
];
