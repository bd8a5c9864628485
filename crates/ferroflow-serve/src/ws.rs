//! The WebSocket of a session: the server pushes, the page only keeps it open.
//!
//! Text messages (JSON): `{"type": "status", …}` (the object of `GET …/status`) and
//! `{"type": "loss", "generation": g, "reset": bool, "points": [[step, loss, ema], …]}` (the
//! points since the last message; `reset` means "drop what you have"). Binary messages: point
//! sets in the layout of [`crate::frame`] — the data layer (kind 2) when it changes and the
//! particles (kind 1) at every new snapshot. Updates are coalesced to at most 20 a second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;

use crate::api::{ApiError, AppState, status_json};
use crate::frame::{FrameKind, encode};
use crate::session::{Session, lock};

pub(crate) async fn upgrade(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let ws = ws.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    Ok(ws.on_upgrade(move |socket| run(socket, s)))
}

/// What this connection has sent so far.
#[derive(Default)]
struct Sent {
    generation: Option<u64>,
    last_step: f64,
    /// The count of the last snapshot sent (`Shared::snapshots`, restarted with the
    /// generation). Not the snapshot's address: a new snapshot can be allocated where one
    /// this connection skipped was freed, and would then never be sent.
    snapshot: Option<u64>,
}

async fn run(mut socket: WebSocket, s: Arc<Session>) {
    s.clients.fetch_add(1, Ordering::SeqCst);
    let mut rx = s.changed.subscribe();
    let mut sent = Sent::default();
    loop {
        let msgs = updates(&s, &mut sent);
        let mut failed = false;
        for m in msgs {
            if socket.send(m).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { break },
            m = socket.recv() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => { s.touch(); continue; }
            },
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.touch();
    s.clients.fetch_sub(1, Ordering::SeqCst);
}

fn updates(s: &Session, sent: &mut Sent) -> Vec<Message> {
    let status = status_json(s);
    let mut out = vec![Message::Text(json!({"type": "status", "status": status}).to_string().into())];
    let sh = lock(&s.shared);
    let reset = sent.generation != Some(sh.generation);
    if reset {
        sent.last_step = -1.0;
        sent.snapshot = None;
        let d = &sh.data;
        out.push(Message::Binary(encode(FrameKind::Data, d.n, 0, sh.generation, &[1.0], &d.data, 0).into()));
    }
    let points: Vec<_> = sh.losses.iter().filter(|p| p[0] > sent.last_step).collect();
    if reset || !points.is_empty() {
        if let Some(p) = points.last() {
            sent.last_step = p[0];
        }
        out.push(Message::Text(
            json!({"type": "loss", "generation": sh.generation, "reset": reset, "points": points}).to_string().into(),
        ));
    }
    sent.generation = Some(sh.generation);
    if let Some(snap) = &sh.snapshot
        && sent.snapshot != Some(sh.snapshots)
    {
        sent.snapshot = Some(sh.snapshots);
        let t = &snap.traj;
        out.push(Message::Binary(
            encode(FrameKind::Particles, t.n, snap.step, sh.generation, &t.times, &t.states, t.nfe).into(),
        ));
    }
    out
}
