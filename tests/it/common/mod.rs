//! Helpers for integration tests: run the real binary, speak MCP to it over stdio and HTTP.
#![allow(dead_code)]

pub mod moto;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PROTOCOL: &str = "2025-11-25";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tagwarden")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary to completion: (exit code, stdout, stderr). The environment is cleared
/// (no AWS profile or credentials leak in) except PATH and `envs`.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(envs.iter().copied())
        .current_dir(repo())
        .output()
        .expect("run tagwarden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON `tagwarden check --format json` prints.
pub fn check_json(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all, envs);
    assert!(code == 0 || code == 2, "check failed ({code}): {stderr}");
    serde_json::from_str(&stdout).expect("check prints JSON")
}

/// Removes the parts of an answer that depend on when it was computed.
pub fn without_timing(mut v: Value) -> Value {
    if let Some(dq) = v.get_mut("data_quality").and_then(Value::as_object_mut) {
        dq.remove("fetched_at");
        dq.remove("cache");
    }
    v
}

/// Lines of a child's stream, read on a thread so the child never blocks on a full pipe.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// An MCP session with `tagwarden serve --stdio`.
pub struct StdioClient {
    child: Child,
    /// The server's data directory (audit log); removed with the client.
    pub data_dir: tempfile::TempDir,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    next_id: u64,
}

impl StdioClient {
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> StdioClient {
        let mut all = vec!["serve", "--stdio"];
        all.extend_from_slice(args);
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let mut child = Command::new(bin())
            .args(&all)
            .env("TAGWARDEN_DATA_DIR", data_dir.path())
            // A Redis of the developer's environment must not leak into tests that did not ask
            // for one (shared scans would change their API-call counts).
            .env_remove("REDIS_URL")
            .env_remove("TAGWARDEN_CACHE_PREFIX")
            .envs(envs.iter().copied())
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tagwarden serve --stdio");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        StdioClient {
            child,
            data_dir,
            stdin: Some(stdin),
            stdout,
            stderr,
            next_id: 1,
        }
    }

    /// Starts and performs the initialize handshake.
    pub fn initialized(args: &[&str], envs: &[(&str, &str)]) -> (StdioClient, Value) {
        let mut c = StdioClient::start(args, envs);
        let init = c.request(
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "tagwarden-tests", "version": "1"}}),
        );
        c.notify("notifications/initialized", json!({}));
        (c, init)
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("session still open");
        stdin.write_all(bytes).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("session still open");
        let written = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush());
        if let Err(e) = written {
            std::thread::sleep(Duration::from_millis(300));
            panic!(
                "cannot write to the server ({e}); its stderr:\n{}",
                self.drain_stderr()
            );
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_raw(&msg.to_string());
    }

    /// Sends a request and returns the whole response message (result or error).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&msg.to_string());
        self.wait_for_id(&json!(id))
    }

    /// Sends a request and returns its reply, or an error the server could not tie to any
    /// request (id null or absent: unparsable or oversized input). Requests must be sequential.
    pub fn request_or_error(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&msg.to_string());
        loop {
            let reply = self.next_message();
            let untied = reply.get("error").is_some() && reply.get("id").is_none_or(Value::is_null);
            if reply.get("id") == Some(&json!(id)) || untied {
                return reply;
            }
        }
    }

    pub fn wait_for_id(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.stdout.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!(
                    "no response to id {id} within 60 s; stderr: {}",
                    self.drain_stderr()
                ),
            };
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line}"));
            if msg.get("id") == Some(id) {
                return msg;
            }
        }
    }

    /// Next message on stdout whatever it is (for error responses without our id).
    /// The next message, or None after `wait`.
    pub fn try_next_message(&mut self, wait: Duration) -> Option<Value> {
        self.stdout
            .recv_timeout(wait)
            .ok()
            .map(|line| serde_json::from_str(&line).expect("JSON line"))
    }

    pub fn next_message(&mut self) -> Value {
        match self.stdout.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => serde_json::from_str(&line).expect("JSON line"),
            Err(e) => panic!(
                "no message from the server ({e}); its stderr:\n{}",
                self.drain_stderr()
            ),
        }
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call {tool} returned no result: {r}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server, from /proc (KiB).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn drain_stderr(&self) -> String {
        let mut s = String::new();
        while let Ok(line) = self.stderr.try_recv() {
            s.push_str(&line);
            s.push('\n');
        }
        s
    }
}

impl StdioClient {
    /// Closes stdin (a clean end of session), waits for the server to exit, and hands over
    /// its data directory: (exit code, data dir).
    pub fn finish(mut self) -> (i32, tempfile::TempDir) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                break -1;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"));
        (code, dir)
    }
}

impl Drop for StdioClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `tagwarden serve --http`.
pub struct HttpServer {
    child: Child,
    /// The server's data directory (audit log); removed with the server.
    pub data_dir: tempfile::TempDir,
    pub base: String,
    pub stderr: Receiver<String>,
}

impl HttpServer {
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> HttpServer {
        let mut all = vec!["serve", "--http", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let mut child = Command::new(bin())
            .args(&all)
            .env("TAGWARDEN_DATA_DIR", data_dir.path())
            // A Redis of the developer's environment must not leak into tests that did not ask
            // for one (shared scans would change their API-call counts).
            .env_remove("REDIS_URL")
            .env_remove("TAGWARDEN_CACHE_PREFIX")
            .envs(envs.iter().copied())
            .env("TAGWARDEN_LOG", "info")
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tagwarden serve --http");
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("server did not report its address"));
            if let Some(at) = line.find("listening on http://") {
                let url = line[at + "listening on ".len()..].trim();
                break url.trim_end_matches("/mcp").to_string();
            }
        };
        HttpServer {
            child,
            data_dir,
            base,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Streamable HTTP MCP client (2025-11-25, with a session).
pub struct HttpClient {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    next_id: u64,
}

/// The JSON-RPC messages in a response body (JSON or SSE).
pub fn messages(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    } else {
        serde_json::from_str(body)
            .map(|v| vec![v])
            .unwrap_or_default()
    }
}

/// An HTTP client that sends `Authorization: Bearer TOKEN` with every request.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let value = format!("Bearer {token}").parse().expect("a header value");
    reqwest::Client::builder()
        .default_headers(
            [(reqwest::header::AUTHORIZATION, value)]
                .into_iter()
                .collect(),
        )
        .build()
        .expect("an HTTP client")
}

impl HttpClient {
    pub fn new(base: &str) -> HttpClient {
        HttpClient {
            http: reqwest::Client::new(),
            url: format!("{base}/mcp"),
            session: None,
            next_id: 1,
        }
    }

    /// An initialized session whose requests carry the bearer `token`.
    pub async fn authenticated(base: &str, token: &str) -> HttpClient {
        let mut c = HttpClient::new(base);
        c.http = bearer_client(token);
        c.initialize().await;
        c
    }

    pub async fn post(&self, body: Value) -> (u16, reqwest::header::HeaderMap, Vec<Value>) {
        let mut req = self
            .http
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", PROTOCOL);
        if let Some(s) = &self.session {
            req = req.header("Mcp-Session-Id", s);
        }
        let resp = req.body(body.to_string()).send().await.expect("POST /mcp");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap_or_default();
        (status, headers, messages(&ct, &text))
    }

    pub async fn initialize(&mut self) -> Value {
        let (status, headers, msgs) = self
            .post(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": PROTOCOL, "capabilities": {},
                           "clientInfo": {"name": "tagwarden-tests", "version": "1"}}}))
            .await;
        assert_eq!(status, 200, "initialize status");
        self.session = headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert!(self.session.is_some(), "a session id is issued");
        let (status, _, _) = self
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(status, 202, "initialized notification accepted");
        msgs.into_iter()
            .find(|m| m.get("id") == Some(&json!(0)))
            .expect("initialize reply")
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let (status, _, msgs) = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        assert_eq!(status, 200, "{method} status");
        msgs.into_iter()
            .find(|m| m.get("id") == Some(&json!(id)))
            .unwrap_or_else(|| panic!("no reply to {method}"))
    }

    pub async fn call(&mut self, tool: &str, args: Value) -> Value {
        let r = self
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await;
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call {tool} returned no result: {r}"))
    }

    /// A tool call that must succeed: its `structuredContent`.
    pub async fn ok(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args.clone()).await;
        assert_ne!(r["isError"], json!(true), "{tool} {args}: {r}");
        r["structuredContent"].clone()
    }
}

/// Path to a tool in the test virtualenv (`.venv`, made by scripts/test.sh).
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var("TAGWARDEN_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test.sh, which creates the test virtualenv",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port} after {within:?}");
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests").join("fixtures").join(name)
}

/// Where browser tests leave their screenshots (kept for people to look at).
pub fn artifacts() -> PathBuf {
    let dir = repo().join("target/report-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/report-artifacts");
    dir
}

/// Node (from `npm ci` in tests/js, with playwright-core) and Chromium for browser tests:
/// (node, chromium); fails the test saying how to install what is missing.
pub fn browser() -> (PathBuf, String) {
    let node = repo().join("tests/js/node_modules/.bin/node");
    assert!(
        repo()
            .join("tests/js/node_modules/playwright-core")
            .exists()
            && node.exists(),
        "playwright-core is not installed: run ./scripts/test.sh (npm ci in tests/js)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: apt-get install chromium (scripts/test.sh does it)"
    );
    (node, chromium)
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// How many tools the server lists (from the registry itself, so adding a tool does not mean
/// editing every test that checks a tools/list).
pub fn tool_count() -> usize {
    tagwarden::Registry::new().names().len()
}
