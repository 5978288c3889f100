//! The history store (in progress).
