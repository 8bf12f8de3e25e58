//! The integration suite as one test binary: one module per capability, each starting real
//! `mqnode` and `mqctl` processes through the harness (`mq_tests`). Test names carry their
//! module, e.g. `cargo test -p mq-tests --test integration -- durability::`.
//!
//! Tests run in parallel threads of this one process, so none may change process-wide state
//! (environment, working directory, signal handlers) or rely on a fixed port.

mod admin_api;
mod bad_input;
mod chaos_short;
mod cli_adopt;
mod cli_cluster;
mod cli_commands;
mod cli_console;
mod cli_dlq;
mod cli_docs;
mod cli_errors;
mod cli_exit;
mod cli_failover;
mod cli_output;
mod cli_ports;
mod cli_remote;
mod cli_replicated;
mod cli_spelling;
mod cli_tables;
mod composite;
mod concurrency;
mod console;
mod cursor;
mod durability;
mod durable;
mod exclusive_groups;
mod faults;
mod ha_failover;
mod ha_lock;
mod ha_stepdown;
mod heartbeat;
mod interop;
mod logging;
mod master_slave;
mod messaging;
mod network_api;
mod network_demand;
mod network_discovery;
mod network_line;
mod network_reconnect;
mod network_ring;
mod network_static;
mod packaging;
mod pg_ha;
mod pg_lease;
mod pg_store;
mod protocol;
mod redelivery;
mod replicated;
mod replicated_netns;
mod scheduled;
mod security;
mod selectors;
mod startup;
mod subscribe_headers;
mod temp_destinations;
mod transactions;
mod virtual_topics;
mod websocket;
mod wildcards;
mod zk_election;
