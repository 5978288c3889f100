//! MCP over stdio: stdout carries only protocol messages; logs go to stderr.
//!
//! Input lines pass through a small gate before rmcp sees them: a line that is not JSON gets a
//! JSON-RPC parse error (`-32700`, id null) instead of being dropped silently, and a line larger
//! than the limit is refused without being buffered whole. Everything written to stdout goes
//! through one writer, a whole line at a time, so replies never interleave.

use futures_util::StreamExt;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use super::TagwardenServer;

/// Largest accepted message line on stdio.
pub const MAX_LINE_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("MCP session over stdio failed to start: {0}")]
    Start(String),
    #[error("MCP session over stdio ended with an error: {0}")]
    Run(String),
}

/// Serves one MCP session on stdin/stdout until the client disconnects.
pub async fn serve_stdio(server: TagwardenServer) -> Result<(), StdioError> {
    serve_lines(server, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one MCP session over any line-oriented byte streams.
pub async fn serve_lines<R, W>(
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
        let mut lines = FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
        while let Some(line) = lines.next().await {
            let reply = match line {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => {
                    if serde_json::from_str::<serde::de::IgnoredAny>(&line).is_ok() {
                        let forwarded = async {
                            to_rmcp.write_all(line.as_bytes()).await?;
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
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    tracing::warn!("stdio: message over {MAX_LINE_BYTES} bytes refused");
                    error_reply(
                        -32600,
                        &format!("Invalid Request: message larger than {MAX_LINE_BYTES} bytes"),
                    )
                }
                Err(LinesCodecError::Io(e)) => {
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

fn error_reply(code: i64, message: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
        .to_string()
}
