//! Just enough HTTP/1.1 over tokio's TCP: a response head, and one-shot
//! requests on a fresh connection that bring back the poll's `total_votes`.
//!
//! Hand-rolled rather than a client library so that an event stream costs
//! one socket and a few words of state, and a vote is a new connection with
//! no cookie, like a new reader.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::scan::Scanner;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub content_length: Option<usize>,
}

/// Reads a response head; returns it with the body bytes that came along.
pub async fn read_head(stream: &mut TcpStream) -> Result<(Head, Vec<u8>)> {
    let mut buf = Vec::with_capacity(2048);
    let mut searched = 0;
    loop {
        if buf.len() >= MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
        buf.reserve(2048);
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("connection closed before the response head ended");
        }
        // Resume the search a little before the new bytes: the blank line may straddle reads.
        if let Some(pos) = find(&buf[searched..], b"\r\n\r\n") {
            let end = searched + pos;
            let head = parse_head(&buf[..end])?;
            let body = buf.split_off(end + 4);
            return Ok((head, body));
        }
        searched = buf.len().saturating_sub(3);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> Result<Head> {
    let text = std::str::from_utf8(bytes).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut head = Head {
        status,
        chunked: false,
        content_length: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        }
    }
    Ok(head)
}

/// The request that opens a poll's event stream.
pub fn stream_request(server: SocketAddr, poll: &str) -> Vec<u8> {
    format!(
        "GET /api/v1/polls/{poll}/events HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .into_bytes()
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The first `total_votes` in the body, if any.
    pub total: Option<u64>,
}

/// One request on a new connection (`Connection: close`, no cookie).
/// `sent` is called just before the request is written, so that a caller
/// can time from the moment the request left, not from the connect.
pub async fn one_shot(
    server: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    sent: impl FnOnce(),
) -> Result<Reply> {
    let mut stream = TcpStream::connect(server).await?;
    stream.set_nodelay(true)?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n");
    if let Some(json) = json {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            json.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(json.unwrap_or_default());
    sent();
    stream.write_all(request.as_bytes()).await?;
    let (head, mut body) = read_head(&mut stream).await?;
    let mut scanner = Scanner::new(head.chunked);
    let mut total = None;
    let mut fed = 0;
    loop {
        scanner.feed(&body[fed..], |t| {
            total.get_or_insert(t);
        })?;
        fed = body.len();
        let complete = match head.content_length {
            Some(length) => body.len() >= length,
            None => scanner.done(),
        };
        if complete || total.is_some() {
            break;
        }
        if body.len() >= MAX_BODY {
            bail!("response body longer than {MAX_BODY} bytes");
        }
        body.reserve(4096);
        if stream.read_buf(&mut body).await? == 0 {
            break;
        }
    }
    Ok(Reply {
        status: head.status,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_framing() {
        let head = parse_head(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\ncontent-length: 120").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.status, 503);
        assert_eq!(head.content_length, Some(120));
        assert!(!head.chunked);
        let head = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.status, 200);
        assert!(head.chunked);
        assert!(parse_head(b"SSH-2.0 hello").is_err());
    }
}
