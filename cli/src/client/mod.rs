//! Clients `mqctl` uses to talk to nodes: the admin API over HTTP ([`admin`]).

pub mod admin;
