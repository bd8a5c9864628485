//! `ferroflow serve`: a web explorer that trains a 2D flow live on the server and shows it in
//! the browser — particles flowing from the source (t = 0) to the model's t = 1, the
//! velocity field, trajectories, the exact log-density, the loss, W2 — with every setting of
//! the core library as a control.
//!
//! # Threads
//! Each session trains on its own OS thread ([`session`]); the async side (axum on tokio)
//! only reads snapshots behind a mutex and forwards commands over a channel. Heavier reads
//! (vector field, density, a launched trajectory) run on tokio's blocking pool. A panic in a
//! trainer thread is caught and becomes that session's error.
//!
//! # API
//! See `README.md` beside this crate for the routes and the WebSocket frame layout
//! ([`frame`]).

#![warn(missing_docs)]

pub mod api;
mod assets;
pub mod frame;
pub mod sampling;
pub mod session;
pub mod settings;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use api::{AppState, ServerConfig, router};

/// Options of [`serve`].
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// A checkpoint made by `ferroflow train` to open.
    pub ckpt: Option<PathBuf>,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The port could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] ferroflow::checkpoint::CheckpointError),
    /// Serving failed.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds 127.0.0.1:`port`, then calls `on_bound` with the address and serves until Ctrl-C.
///
/// # Errors
/// [`ServeError::Bind`] if the port is taken; [`ServeError::Checkpoint`] for an unreadable
/// `--ckpt`.
pub async fn serve_with(opts: ServeOptions, on_bound: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let ckpt = match &opts.ckpt {
        Some(p) => Some(Arc::new(ferroflow::checkpoint::Checkpoint::read(p)?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|source| ServeError::Bind { port: opts.port, source })?;
    let addr = listener.local_addr()?;
    let state = AppState::new(ServerConfig { ckpt, ..ServerConfig::default() });
    let reaper = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            reaper.expire();
        }
    });
    on_bound(addr);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    // Open WebSockets would hold a graceful shutdown forever: give them a second.
    let deadline = async move {
        let _ = stop_rx.changed().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::select! {
        r = server => r?,
        () = deadline => {}
    }
    Ok(())
}

/// Runs the explorer (printing `ferroflow explorer: http://127.0.0.1:PORT/`) until Ctrl-C, on
/// a tokio runtime of its own.
///
/// # Errors
/// As [`serve_with`].
pub fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(serve_with(opts, |addr| println!("ferroflow explorer: http://{addr}/")))?;
    // Trainer threads end when their sessions drop; do not wait for blocking tasks.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
