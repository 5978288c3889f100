//! `history.db` holds four stores, compliance snapshots, undelivered alerts and sent weekly
//! summaries (`history`), virtual tags (`virtual_tags`), decisions on cost anomalies
//! (`anomalies`) and shared-cost allocation rules (`allocation_rules`), under one schema
//! version: each opens the file with this one migration list,
//! so they agree on its version (`TooNew` compares against the highest). Each store keeps the
//! SQL of its own tables in its `schema` module.

use super::{allocation_rules, anomalies, history, virtual_tags};

/// The migrations of `history.db`, in version order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, history::schema::V1),
    (2, virtual_tags::schema::V2),
    (3, virtual_tags::schema::V3),
    (4, anomalies::V4),
    (5, virtual_tags::schema::V5),
    (6, history::dead_letters::V6),
    (7, history::summaries::V7),
    (8, allocation_rules::V8),
    (9, anomalies::V9),
    (10, history::schema::V10),
];
