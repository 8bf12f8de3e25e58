//! mqnode library (being written).
