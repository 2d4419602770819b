//! Test-only HTTP client for a running `vqprobe run` (ureq, statuses as values, a
//! bounded timeout on every request), plus waiting for the API to come up.
//!
//! Include it with `#[path = "support/http.rs"] mod http;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One answer: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Header values by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// Asserts the error envelope `{"error": {"code", "message"}}` with this status and
    /// code; returns the message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
        v["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {v}"))
            .to_string()
    }
}

/// A client for one base URL, optionally sending a bearer key.
#[derive(Clone)]
pub struct Client {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Bearer key sent with every request, if any.
    pub key: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `base` (5 s per request).
    pub fn new(base: &str, key: Option<&str>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            key: key.map(str::to_string),
            agent,
        }
    }

    /// The same server with another key (or none).
    pub fn with_key(&self, key: Option<&str>) -> Client {
        Client {
            key: key.map(str::to_string),
            ..self.clone()
        }
    }

    /// Any request; `Err` only for transport failures (connection refused, timeout).
    pub fn try_req(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let url = format!("{}{}", self.base, path);
        let auth = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        let result = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                for (k, v) in &all {
                    r = r.header(*k, *v);
                }
                r.call()
            }
            "POST" | "PUT" => {
                let mut r = if method == "POST" {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                for (k, v) in &all {
                    r = r.header(*k, *v);
                }
                match body {
                    Some((ct, bytes)) => {
                        if !ct.is_empty() {
                            r = r.header("Content-Type", ct);
                        }
                        r.send(bytes)
                    }
                    None => r.send_empty(),
                }
            }
            other => panic!("method {other}"),
        };
        let mut resp = result.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| format!("{method} {path}: reading body: {e}"))?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Any request, panicking on transport failures.
    pub fn req(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Resp {
        self.try_req(method, path, body, &[])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// GET.
    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None)
    }

    /// GET that must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert!(
            r.header("content-type").starts_with("application/json"),
            "GET {path}: content-type {}",
            r.header("content-type")
        );
        r.json()
    }

    /// POST/PUT with a JSON body.
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).expect("JSON body");
        self.req(method, path, Some(("application/json", &bytes)))
    }

    /// Polls `GET /healthz` until it answers (any status) or `timeout` passes.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.try_req("GET", "/healthz", None, &[]).is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved kept).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
