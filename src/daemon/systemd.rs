//! Talking to systemd (`Type=notify`): READY once the store is open and the listener bound,
//! RELOADING/READY around a reload, STOPPING at shutdown, a STATUS line for `systemctl
//! status`, and watchdog keep-alives while the supervisor's heartbeat is fresh.
//!
//! Outside systemd (no `$NOTIFY_SOCKET`) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// While starting takes long (opening a big store, converting its layout): the start-up
/// timeout is pushed `extend` further, so `TimeoutStartSec` measures a stall, not the
/// size of the store.
pub fn still_starting(status: &str, extend: Duration) {
    let usec = u32::try_from(extend.as_micros()).unwrap_or(u32::MAX);
    send(&[
        NotifyState::ExtendTimeoutUsec(usec),
        NotifyState::Status(status),
    ]);
}

pub fn reloading() {
    // MONOTONIC_USEC lets Type=notify-reload (systemd 253+) match the reload to the signal.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any.
pub fn watchdog() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// How often to consider a keep-alive: twice per watchdog interval, as sd_watchdog_enabled(3)
/// advises.
pub fn keepalive_period(watchdog: Duration) -> Duration {
    (watchdog / 2).max(Duration::from_millis(10))
}

/// Whether a heartbeat `age` old proves the daemon alive enough for a keep-alive: it must
/// be younger than half the watchdog interval (the supervisor beats every second, so a
/// healthy daemon is far inside that).
pub fn alive(age: Duration, watchdog: Duration) -> bool {
    age < keepalive_period(watchdog).max(crate::daemon::supervise::HEARTBEAT * 3)
}

pub fn keepalive() {
    send(&[NotifyState::Watchdog]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_heartbeat_withholds_the_keepalive() {
        let wd = Duration::from_secs(30);
        assert!(alive(Duration::from_millis(900), wd));
        assert!(alive(Duration::from_secs(14), wd));
        assert!(!alive(Duration::from_secs(15), wd));
        assert!(!alive(Duration::from_secs(300), wd));
        // A tiny watchdog still allows a few heartbeats' slack.
        assert!(alive(Duration::from_secs(2), Duration::from_millis(200)));
        assert!(!alive(Duration::from_secs(3), Duration::from_millis(200)));
    }
}
