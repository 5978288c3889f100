//! `history.db` holds two stores, compliance snapshots (`history`) and virtual tags
//! (`virtual_tags`), under one schema version: both open the file with this one migration list,
//! so they agree on its version (`TooNew` compares against the highest). Each store keeps the
//! SQL of its own tables in its `schema` module.

use super::{history, virtual_tags};

/// The migrations of `history.db`, in version order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, history::schema::V1),
    (2, virtual_tags::schema::V2),
    (3, virtual_tags::schema::V3),
];
