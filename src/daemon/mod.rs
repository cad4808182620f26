//! The daemon's life: the supervisor of source tasks, reloads, shutdown, systemd, health.

pub mod control;
pub mod indexing;
pub mod metrics;
pub mod reload;
pub mod retention;
pub mod shutdown;
pub mod status;
pub mod supervise;
pub mod systemd;
mod watch;
pub mod webhooks;
pub mod websub;
