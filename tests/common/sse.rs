//! Reads Server-Sent Events from a response, as a browser's EventSource would.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header;

/// One event: its `id`, its name and its JSON data.
#[derive(Debug)]
pub struct Event {
    pub id: Option<u64>,
    pub name: String,
    pub data: serde_json::Value,
}

pub struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
    /// The `retry:` the server asked for, once seen.
    pub retry: Option<u64>,
    /// Comment lines (heartbeats) seen so far.
    pub comments: usize,
}

impl Events {
    pub async fn open(url: &str) -> Self {
        Self::open_with(&reqwest::Client::new(), url).await
    }

    pub async fn open_with(client: &reqwest::Client, url: &str) -> Self {
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Self::from_response(response)
    }

    pub fn from_response(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
            retry: None,
            comments: 0,
        }
    }

    /// The next event's name and data.
    pub async fn next(&mut self) -> (String, serde_json::Value) {
        let event = self.next_event().await;
        (event.name, event.data)
    }

    /// The next event, waiting at most 5 s for it.
    pub async fn next_event(&mut self) -> Event {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }

    /// The next event, or `None` when none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()?
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    fn parse(&mut self, block: &str) -> Option<Event> {
        let (mut id, mut name, mut data) = (None, String::new(), String::new());
        for line in block.lines() {
            if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(v) = line.strip_prefix("retry: ") {
                self.retry = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        if name.is_empty() {
            return None; // retry or a heartbeat
        }
        Some(Event {
            id,
            name,
            data: serde_json::from_str(&data).unwrap(),
        })
    }

    /// Whether the server has ended the stream within `wait`.
    pub async fn ended_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
