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
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=error".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Text => logs.init(),
        // Each line carries the fields of the spans it is in (the request
        // id, the event and delivery ids).
        cli::LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
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

/// Turns transparent huge pages off for this process. mimalloc asks for them
/// (`MADV_HUGEPAGE` on its arenas), and the first touch of each 2 MiB then
/// zeroes all of it in one page fault: in the profile of the slow-endpoint
/// benchmark, a delivery thread spent up to ~20 ms at a time in
/// `clear_page_erms`, and the healthy endpoint's deliveries waited (p99
/// 22 ms against 5 ms). With 4 KiB pages the same cost is spread thin.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; on failure (an old kernel) nothing changes.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
