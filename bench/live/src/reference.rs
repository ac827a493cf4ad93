//! fanout-reference: a bare axum + `watch` fan-out, measured by tribune-live
//! in the same run as Tribune (bench/live.sh), so that Tribune's lone-vote
//! figures can be read against what this machine gives a server that does
//! nothing but the fan-out.
//!
//! It serves the three requests the tool makes of a poll, and nothing else
//! (every other GET is an empty 200, for the tool's page check):
//! - `GET /api/v1/polls/{poll}/events`: Server-Sent Events, the total now,
//!   then each new one: every stream waits on one `watch` and writes its own
//!   event for each change it sees;
//! - `POST /api/v1/polls/{poll}/votes`: adds one vote, in memory (no
//!   database, no pacing, no caps), and answers 201 with the new total;
//! - `GET /api/v1/polls/{poll}`: the total.
//!
//! Usage: `fanout-reference PORT` (127.0.0.1 only); it runs until killed.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::WatchStream;

type Total = Arc<watch::Sender<u64>>;

fn total_json(total: u64) -> String {
    format!("{{\"total_votes\":{total}}}")
}

async fn events(State(total): State<Total>) -> Response {
    let stream = WatchStream::new(total.subscribe())
        .map(|total| Ok::<_, Infallible>(Event::default().event("poll").data(total_json(total))));
    Sse::new(stream).into_response()
}

async fn vote(State(total): State<Total>) -> Response {
    let mut now = 0;
    total.send_modify(|total| {
        *total += 1;
        now = *total;
    });
    json(StatusCode::CREATED, now)
}

async fn read(State(total): State<Total>) -> Response {
    json(StatusCode::OK, *total.borrow())
}

fn json(status: StatusCode, total: u64) -> Response {
    (
        status,
        [("content-type", "application/json")],
        total_json(total),
    )
        .into_response()
}

fn main() -> ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: fanout-reference PORT");
        return ExitCode::from(2);
    };
    // One file per stream, as the tool and Tribune do.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("fanout-reference: cannot raise the open-file limit: {e}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fanout-reference: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (total, _) = watch::channel(0);
    let app = Router::new()
        .route("/api/v1/polls/{poll}/events", get(events))
        .route("/api/v1/polls/{poll}/votes", post(vote))
        .route("/api/v1/polls/{poll}", get(read))
        .fallback(get(|| async { StatusCode::OK }))
        .with_state(Arc::new(total));
    let served = runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        // Events go out at once, as Tribune's do.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                eprintln!("fanout-reference: cannot set TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, app).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout-reference: {e}");
            ExitCode::from(2)
        }
    }
}
