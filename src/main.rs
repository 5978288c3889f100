//! `tagwarden`: parse the command line, set up logging on stderr, run the command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tagwarden::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// stderr for logs, ignoring write failures: when whoever reads the server's stderr goes
/// away, logging must not take the server down (the default writer's error path panics).
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // stdout is reserved for results (and for protocol in `serve --stdio`): logs go to stderr.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        // Commands report problems in their output or as one error line.
        _ => "error",
    };
    let filter = EnvFilter::try_from_env("TAGWARDEN_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},aws_config=error,aws_smithy_runtime=error"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tagwarden: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(tagwarden::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tagwarden: {e:#}");
            ExitCode::from(1)
        }
    }
}
