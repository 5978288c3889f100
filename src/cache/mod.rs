//! Cache layer (in progress).
