//! The `webhookd` command: the service and its operator tools.
mod cli;

use clap::Parser;
use cli::Cli;

// The delivery path allocates per request (bodies, headers, futures);
// glibc's malloc showed up at ~10 % of the delivery thread in the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // No command means `serve` with its defaults (and the environment's settings).
    let command = cli.command.clone().unwrap_or_else(|| {
        Cli::parse_from(["webhookd", "serve"])
            .command
            .expect("serve parses")
    });
    match cli::run(&cli, command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webhookd: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
