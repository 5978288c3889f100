//! Paging of long answer lists: cursors bound to the question and the data they were computed
//! from, and caps on group lists. Shared by the compliance use-case and the tools that page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::app::{Estate, ToolError};

/// A page position bound to the question and the data it was computed from, so a cursor
/// from another query, or from before a rescan or policy change, is refused rather than
/// silently giving a wrong page.
pub(crate) struct Paging {
    fingerprint: String,
}

impl Paging {
    /// `question` is the canonical JSON of the arguments that shape the list (not the
    /// cursor or limit).
    pub(crate) fn new(tool: &str, question: &serde_json::Value, estate: &Estate) -> Paging {
        let mut h = Sha256::new();
        h.update(tool.as_bytes());
        h.update(crate::util::canonical_json(question).as_bytes());
        h.update(estate.inventory_version.as_bytes());
        h.update(estate.policy().hash().as_bytes());
        h.update(estate.evaluated.overlay.fingerprint.as_bytes());
        Paging {
            fingerprint: hex::encode(&h.finalize()[..6]),
        }
    }

    /// The offset a cursor points to (0 without a cursor).
    pub(crate) fn offset(&self, cursor: Option<&str>) -> Result<usize, ToolError> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(0);
        };
        let stale = || {
            ToolError::invalid(
                "argument `cursor`: this cursor does not belong to this question or the data \
                 has changed since (rescan or policy reload); call again without `cursor`",
            )
        };
        let decoded = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| stale())?;
        let text = String::from_utf8(decoded).map_err(|_| stale())?;
        let mut parts = text.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v1"), Some(offset), Some(fp)) if fp == self.fingerprint => {
                offset.parse().map_err(|_| stale())
            }
            _ => Err(stale()),
        }
    }

    /// The cursor for the next page, if there is one.
    pub(crate) fn next(&self, offset: usize, returned: usize, total: usize) -> Option<String> {
        let next = offset + returned;
        (next < total && returned > 0)
            .then(|| URL_SAFE_NO_PAD.encode(format!("v1.{next}.{}", self.fingerprint)))
    }
}

/// Bounded `Vec` helper for group lists in outputs.
pub(crate) fn cap<T>(mut items: Vec<T>, max: usize) -> (Vec<T>, usize) {
    let total = items.len();
    items.truncate(max);
    (items, total)
}
