//! `mlsched`: the scheduler binary. Finds its cluster like kubectl (KUBECONFIG, else in-cluster).

use std::path::PathBuf;

use clap::Parser;
use mlsched_scheduler::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "mlsched", about = "Gang-, GPU- and topology-aware Kubernetes scheduler")]
struct Args {
    /// YAML config file; without it the defaults apply (see scheduler/daemon/README.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides the config's logFormat (text or json).
    #[arg(long)]
    log_format: Option<String>,
    /// Validate the config and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlsched: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let text = match &args.config {
        Some(path) => std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        None => String::new(),
    };
    let mut config = Config::from_yaml(&text).map_err(anyhow::Error::msg)?;
    if let Some(f) = &args.log_format {
        config.log_format = match f.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => anyhow::bail!("--log-format {other:?}: use text or json"),
        };
    }
    if args.check_config {
        println!("config ok");
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        // Colours only on a terminal: log collectors would store the escape codes.
        LogFormat::Text => tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_env_filter(filter)
            .init(),
    }
    let client = kube::Client::try_default().await?;
    mlsched_scheduler::run(config, client, shutdown_signal(), None).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
