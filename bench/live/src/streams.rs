//! Opens the event streams and follows them.
//!
//! Every stream is one TCP connection with one task on the tool's single
//! thread. With several servers, stream `i` goes to server `i % servers`.
//! Connections come from 127.0.0.2, 127.0.0.3, … (`per_source`
//! each), so the server sees many readers' addresses and no one source runs
//! short of ports. At most `concurrency` streams are being opened at once,
//! so the server's accept queue never overflows. Reads share one set of
//! buffers: a stream's own state is its socket and its place in the body.

use std::cell::RefCell;
use std::io::{ErrorKind, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::board::{Board, StreamState};
use crate::http::read_head;
use crate::scan::Scanner;

/// The first source address's last byte: 127.0.0.2 (127.0.0.1 is wrk's and the votes').
pub const FIRST_SOURCE: usize = 2;

#[derive(Clone)]
pub struct Opener {
    /// The servers the streams are spread over, in turn, each with its request.
    pub servers: Rc<[(SocketAddr, Rc<[u8]>)]>,
    pub per_source: usize,
    pub concurrency: usize,
    pub timeout: Duration,
}

enum Opened {
    Stream(TcpStream, Scanner, Vec<u8>),
    Refused,
}

/// The source address of stream `index`.
pub fn source(index: usize, per_source: usize) -> Ipv4Addr {
    let host = FIRST_SOURCE + index / per_source;
    Ipv4Addr::new(127, 0, (host / 256) as u8, (host % 256) as u8)
}

/// Opens `count` streams, at most `concurrency` at a time, and returns once
/// each has been started (the last ones may still be opening). The streams
/// are the set's tasks: shutting it down closes them all.
pub async fn open_all(
    board: Rc<RefCell<Board>>,
    buffers: Rc<RefCell<ReadBuffers>>,
    opener: Opener,
    count: usize,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let gate = Arc::new(Semaphore::new(opener.concurrency));
    for index in 0..count {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let (board, buffers, opener) = (board.clone(), buffers.clone(), opener.clone());
        tasks.spawn_local(async move {
            let opened = tokio::time::timeout(opener.timeout, open(index, &opener)).await;
            drop(permit);
            let opened =
                opened.unwrap_or_else(|_| Err(anyhow!("no answer in {:?}", opener.timeout)));
            match opened {
                Ok(Opened::Stream(stream, scanner, first)) => {
                    board.borrow_mut().set_state(index, StreamState::Open, None);
                    follow(index, stream, scanner, first, &board, &buffers).await;
                }
                Ok(Opened::Refused) => {
                    board
                        .borrow_mut()
                        .set_state(index, StreamState::Refused, None)
                }
                Err(e) => {
                    board
                        .borrow_mut()
                        .set_state(index, StreamState::Failed, Some(format!("{e:#}")))
                }
            }
        });
    }
    tasks
}

async fn open(index: usize, opener: &Opener) -> Result<Opened> {
    let (server, request) = &opener.servers[index % opener.servers.len()];
    let socket = TcpSocket::new_v4()?;
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
    // Bind first: this is what picks the source address.
    socket.bind(SocketAddr::new(source(index, opener.per_source).into(), 0))?;
    let mut stream = socket.connect(*server).await?;
    stream.set_nodelay(true)?;
    stream.write_all(request).await?;
    let (head, body) = read_head(&mut stream).await?;
    match head.status {
        200 => Ok(Opened::Stream(stream, Scanner::new(head.chunked), body)),
        // Over the server's cap: expected, and the connection is closed here.
        503 => Ok(Opened::Refused),
        status => Err(anyhow!("the stream was answered {status}")),
    }
}

/// What the streams share for reading: one data buffer and one buffer for
/// the kernel's receive timestamp.
pub struct ReadBuffers {
    data: Vec<u8>,
    control: Vec<u8>,
}

impl ReadBuffers {
    pub fn new() -> Self {
        Self {
            data: vec![0u8; 64 * 1024],
            control: nix::cmsg_space!(TimeSpec),
        }
    }
}

/// Reads a stream until it ends, telling the board every total it shows.
///
/// An event is dated by the kernel's receive timestamp (SO_TIMESTAMPNS):
/// when its bytes reached this socket, not when this one thread got round
/// to reading them. With thousands of streams behind one event, the tool's
/// own queue would otherwise be counted as the server's delay.
async fn follow(
    index: usize,
    stream: TcpStream,
    mut scanner: Scanner,
    first: Vec<u8>,
    board: &RefCell<Board>,
    buffers: &RefCell<ReadBuffers>,
) {
    let feed = |scanner: &mut Scanner, bytes: &[u8], stamp: Option<Duration>| {
        let mut board = board.borrow_mut();
        let now = board.now();
        let at = match stamp {
            Some(wall) => board.since_epoch(wall).min(now),
            None => {
                board.reads_without_stamp += 1;
                now
            }
        };
        board.note_lag(now - at);
        let fed = scanner.feed(bytes, |total| board.saw(index, total, at));
        if fed.is_err() {
            board.bad_bodies += 1;
        }
        fed.is_ok()
    };
    // The bytes that came with the head: dated now (they are the first event).
    let mut ok = first.is_empty() || {
        let mut board = board.borrow_mut();
        let at = board.now();
        scanner
            .feed(&first, |total| board.saw(index, total, at))
            .is_ok()
    };
    drop(first);
    let fd = stream.as_raw_fd();
    while ok {
        if stream.readable().await.is_err() {
            break;
        }
        // Never held across an await: one task reads at a time on this thread.
        let mut buffers = buffers.borrow_mut();
        let ReadBuffers { data, control } = &mut *buffers;
        let mut got = None;
        let read = stream.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(data)];
            let msg = recvmsg::<()>(fd, &mut iov, Some(control), MsgFlags::MSG_DONTWAIT)?;
            let stamp = msg.cmsgs().ok().and_then(|mut all| {
                all.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => Some(Duration::new(
                        u64::try_from(t.tv_sec()).unwrap_or(0),
                        u32::try_from(t.tv_nsec()).unwrap_or(0),
                    )),
                    _ => None,
                })
            });
            got = Some((msg.bytes, stamp));
            if msg.bytes > 0 && msg.bytes < iov[0].len() {
                // A short read emptied the socket: report WouldBlock so that
                // tokio forgets the readiness now, instead of spending one more
                // read per event to learn it. New data re-arms it (edge-triggered).
                return Err(ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match (got, read) {
            (Some((0, _)), _) => break,
            (Some((n, stamp)), _) => ok = feed(&mut scanner, &data[..n], stamp),
            (None, Err(e)) if e.kind() == ErrorKind::WouldBlock => {}
            (None, _) => break,
        }
    }
    board
        .borrow_mut()
        .set_state(index, StreamState::Dropped, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_start_at_127_0_0_2() {
        assert_eq!(source(0, 2000), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source(1999, 2000), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source(2000, 2000), Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(source(18_999, 2000), Ipv4Addr::new(127, 0, 0, 11));
        assert_eq!(source(254, 1), Ipv4Addr::new(127, 0, 1, 0));
    }
}
