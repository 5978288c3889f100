//! MCP over stdio: stdout carries only protocol messages; logs go to stderr.
//!
//! Input lines pass through a small gate before rmcp sees them: a line that is not JSON (or not
//! UTF-8) gets a JSON-RPC parse error (`-32700`, id null) instead of being dropped silently, and
//! a line larger than the limit is refused without being buffered whole; the session carries on
//! after either. Everything written to stdout goes
//! through one writer, a whole line at a time, so replies never interleave.

use futures_util::StreamExt;
use rmcp::ServiceExt;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::TagwardenServer;

/// Largest accepted message line on stdio.
pub(crate) const MAX_LINE_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StdioError {
    #[error("MCP session over stdio failed to start: {0}")]
    Start(String),
    #[error("MCP session over stdio ended with an error: {0}")]
    Run(String),
}

/// Serves one MCP session on stdin/stdout until the client disconnects.
pub(crate) async fn serve_stdio(server: TagwardenServer) -> Result<(), StdioError> {
    serve_lines(server, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one MCP session over any line-oriented byte streams.
pub(crate) async fn serve_lines<R, W>(
    server: TagwardenServer,
    input: R,
    mut output: W,
) -> Result<(), StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_rmcp_read, mut to_rmcp) = tokio::io::duplex(1 << 20);
    let (mut from_rmcp, from_rmcp_write) = tokio::io::duplex(1 << 20);
    let (errors_tx, mut errors) = mpsc::channel::<String>(64);

    let gate = tokio::spawn(async move {
        let mut input = BufReader::with_capacity(64 * 1024, input);
        let mut line = Vec::new();
        loop {
            let reply = match next_line(&mut input, &mut line).await {
                Ok(Line::End) => break,
                Ok(Line::TooLong) => {
                    tracing::warn!("stdio: message over {MAX_LINE_BYTES} bytes refused");
                    error_reply(
                        -32600,
                        &format!("Invalid Request: message larger than {MAX_LINE_BYTES} bytes"),
                    )
                }
                Ok(Line::Message) => {
                    let text = line.strip_suffix(b"\r").unwrap_or(&line);
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if !crate::util::json_depth_within(text, crate::util::MAX_JSON_DEPTH) {
                        let reply = error_reply(
                            -32600,
                            &format!(
                                "Invalid Request: JSON nested deeper than {} levels",
                                crate::util::MAX_JSON_DEPTH
                            ),
                        );
                        if errors_tx.send(reply).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    // Bytes, not text: a line that is not UTF-8 JSON is answered, not fatal.
                    if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
                        let forwarded = async {
                            to_rmcp.write_all(text).await?;
                            to_rmcp.write_all(b"\n").await?;
                            to_rmcp.flush().await
                        };
                        if forwarded.await.is_err() {
                            break;
                        }
                        continue;
                    }
                    tracing::warn!(
                        "stdio: received a line that is not JSON; replying with a parse error"
                    );
                    error_reply(-32700, "Parse error: the message is not valid JSON")
                }
                Err(e) => {
                    tracing::info!(error = %e, "stdio input closed");
                    break;
                }
            };
            if errors_tx.send(reply).await.is_err() {
                break;
            }
        }
        // Dropping `to_rmcp` ends rmcp's input: the session closes cleanly.
    });

    let writer = tokio::spawn(async move {
        let mut replies = FramedRead::new(&mut from_rmcp, LinesCodec::new());
        loop {
            let line = tokio::select! {
                line = replies.next() => match line {
                    Some(Ok(line)) => line,
                    _ => break,
                },
                Some(line) = errors.recv() => line,
            };
            let written = async {
                output.write_all(line.as_bytes()).await?;
                output.write_all(b"\n").await?;
                output.flush().await
            };
            if written.await.is_err() {
                break;
            }
        }
    });

    let running = server
        .serve((to_rmcp_read, from_rmcp_write))
        .await
        .map_err(|e| StdioError::Start(e.to_string()))?;
    tracing::info!("serving MCP on stdio");
    let result = running.waiting().await;
    gate.abort();
    let _ = writer.await;
    result.map_err(|e| StdioError::Run(e.to_string()))?;
    Ok(())
}

enum Line {
    /// A whole line is in the buffer (without its newline).
    Message,
    /// The line was longer than the limit; it has been skipped.
    TooLong,
    /// End of input.
    End,
}

/// Reads one line into `line`, never buffering more than `MAX_LINE_BYTES` of it: a longer line
/// is skipped to its end and reported, and reading carries on with the next one.
async fn next_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    line.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n = (&mut *input).take(limit).read_until(b'\n', line).await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Line::Message);
    }
    if line.len() <= MAX_LINE_BYTES {
        // The input ended without a final newline.
        return Ok(Line::Message);
    }
    line.clear();
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::TooLong);
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(Line::TooLong);
            }
            None => {
                let all = buf.len();
                input.consume(all);
            }
        }
    }
}

fn error_reply(code: i64, message: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
        .to_string()
}
