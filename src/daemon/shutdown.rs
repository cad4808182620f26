//! Turns the signals a service gets into futures: SIGTERM (how systemd stops a service) and
//! SIGINT (Ctrl-C) mean stop; SIGHUP (`systemctl reload`) means reload the config.

/// The process's signal streams, installed once. The fields are apart so a `select!`
/// can wait on both at once.
pub struct Signals {
    pub stop: Stop,
    pub reload: Reload,
}

/// SIGTERM and SIGINT.
pub struct Stop {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

/// SIGHUP.
pub struct Reload {
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Default for Signals {
    fn default() -> Self {
        Signals::new()
    }
}

impl Signals {
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install a handler for {name}");
                    None
                }
            };
            Signals {
                stop: Stop {
                    term: install(SignalKind::terminate(), "SIGTERM"),
                    int: install(SignalKind::interrupt(), "SIGINT"),
                },
                reload: Reload {
                    hup: install(SignalKind::hangup(), "SIGHUP"),
                },
            }
        }
        #[cfg(not(unix))]
        Signals {
            stop: Stop {},
            reload: Reload {},
        }
    }
}

impl Stop {
    /// Completes when the process is asked to stop.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        {
            if self.term.is_none() && self.int.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                Some(()) = recv(&mut self.term) => tracing::info!("SIGTERM received, shutting down"),
                Some(()) = recv(&mut self.int) => tracing::info!("SIGINT received, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Reload {
    /// Completes at each SIGHUP (never, where there is none).
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if recv(&mut self.hup).await.is_some() {
            return;
        }
        std::future::pending::<()>().await
    }
}

#[cfg(unix)]
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
