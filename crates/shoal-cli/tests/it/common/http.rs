//! A client of a running daemon's HTTP API for the `http_*` tests: calls
//! with or without the token and with any content type over real HTTP
//! (ureq, no proxy, timeouts), a change-feed reader, and raw requests for
//! what ureq will not send (a lying `Content-Length`).

use super::{Daemon, Node};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What one call got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub content_length: Option<u64>,
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics, showing it, if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// Asserts the status, returning the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.json()
    }

    /// Asserts our error shape with this status and code; returns the message.
    pub fn error(&self, status: u16, code: &str) -> String {
        let body = self.expect(status);
        assert_eq!(
            self.content_type, "application/json",
            "an error must be JSON: {body}"
        );
        assert_eq!(body["code"], code, "{body}");
        let message = body["message"].as_str().expect("a message").to_string();
        assert!(!message.is_empty(), "{body}");
        message
    }
}

/// The HTTP API of one daemon.
pub struct Api {
    pub address: String,
    pub token: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn of(node: &Node, daemon: &Daemon) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(CALL_TIMEOUT))
            // A fresh connection per call: a call whose body the daemon did
            // not read (a refused token, a GET sent a body) may leave its
            // connection closed by the daemon just as the pool hands it out.
            .max_idle_connections(0)
            .build()
            .into();
        Api {
            address: daemon.http().to_string(),
            token: node.token(),
            agent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// One call: `token` `None` sends no Authorization header.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let request = request.body(body).expect("a valid request");
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type").unwrap_or_default();
        let content_length = header("content-length").and_then(|v| v.parse().ok());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        Reply {
            status: response.status().as_u16(),
            content_type,
            content_length,
            bytes,
        }
    }

    /// A call with the token, and a JSON body if given.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        match body {
            Some(body) => self.raw(
                method,
                path,
                Some(&self.token),
                Some("application/json"),
                serde_json::to_vec(body).unwrap(),
            ),
            None => self.raw(method, path, Some(&self.token), None, Vec::new()),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.call("PUT", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Reply {
        self.call("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None)
    }

    /// Opens the change feed; `last_event_id` is sent as `Last-Event-ID`.
    pub fn feed(&self, query: &str, last_event_id: Option<u64>) -> Feed {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        let mut request = ureq::http::Request::builder()
            .method("GET")
            .uri(self.url(&format!("/api/changes{query}")))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let request = request.body(()).expect("a valid request");
        let response = agent.run(request).expect("the feed opens");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (tx, rx) = mpsc::channel();
        let reader = response.into_body().into_reader();
        // Ends when the daemon closes the connection (it is killed on drop).
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Feed {
            status,
            content_type,
            lines: rx,
        }
    }
}

/// An open change feed.
pub struct Feed {
    pub status: u16,
    pub content_type: String,
    lines: mpsc::Receiver<String>,
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

impl Feed {
    /// The next event (comments skipped), or `None` after `wait`.
    pub fn next(&self, wait: Duration) -> Option<Event> {
        let deadline = std::time::Instant::now() + wait;
        let (mut id, mut event, mut data) = (None, None, String::new());
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(Event { id, event, data });
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => id = Some(value),
                "event" => event = Some(value),
                "data" => data.push_str(&value),
                _ => {}
            }
        }
    }

    /// Waits up to `wait` for a comment line (`: ...`), skipping events.
    pub fn comment(&self, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(comment) = line.strip_prefix(':') {
                return Some(comment.trim().to_string());
            }
        }
    }

    /// The next `n` events, panicking if they do not come within `wait` each.
    pub fn take(&self, n: usize, wait: Duration) -> Vec<Event> {
        (0..n)
            .map(|i| {
                self.next(wait)
                    .unwrap_or_else(|| panic!("event {} of {n} did not come", i + 1))
            })
            .collect()
    }
}

/// Sends `head` (request line and headers, no blank line) and `body` on a
/// fresh connection, returning the status code the daemon answered with.
pub fn raw_status(address: &str, head: &str, body: &[u8]) -> u16 {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    // The daemon may answer (and close) before reading the body.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}
