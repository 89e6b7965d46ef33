//! `verdict-api`: the HTTP front of verdict. What it does and how the
//! modules divide it: the library's documentation (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;
use verdict_api::{cli, server};
use verdict_shared::{shutdown, telemetry};

fn main() -> ExitCode {
    let args = cli::Args::parse();
    telemetry::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (_trigger, shutdown) = shutdown::on_terminate_signals()?;
        server::serve(args, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "verdict-api failed");
            ExitCode::FAILURE
        }
    }
}
