//! The JSON shapes of `mqctl -o json` and the cluster manifest (`cluster.json`).
