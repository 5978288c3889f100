//! `tagwarden`: parse the command line, set up logging on stderr, run the command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tagwarden::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

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
        .with_writer(std::io::stderr)
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
    match runtime.block_on(tagwarden::cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tagwarden: {e:#}");
            ExitCode::from(1)
        }
    }
}
