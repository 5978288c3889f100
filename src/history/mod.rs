//! Compliance history (in progress).
