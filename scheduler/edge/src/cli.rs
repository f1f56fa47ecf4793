//! The start of both binaries: the flags besides `--config`, the config file, logging, the shutdown signal.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;

/// The config's `logFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The flags both binaries take after their own `--config` (flattened into each binary's clap `Args`).
#[derive(clap::Args, Debug)]
pub struct Flags {
    /// Overrides the config's logFormat (text or json).
    #[arg(long)]
    pub log_format: Option<String>,
    /// Validate the config and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// A binary's whole `main`: reads and validates the config (`parse`; no file means the defaults), applies
/// `--log-format` to the field `log_format` points at, stops after `--check-config`, sets up logging, then
/// runs `run` to its end on a single-threaded runtime. Errors are printed as `name: error`, exit code 1.
pub fn main<C, Fut>(
    name: &str,
    config: Option<&Path>,
    flags: Flags,
    parse: impl FnOnce(&str) -> Result<C, String>,
    log_format: impl FnOnce(&mut C) -> &mut LogFormat,
    run: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    // One thread: the decisions are one sequential loop (passes bounded to a few hundred units, so the Lease,
    // the watches and the binds are served between them), and the rest is waiting on sockets. A second worker
    // mostly woke up to find nothing to steal: in the live bench at 1,000 nodes, the multi-threaded runtime
    // spent 3.3 CPU-s on 5,000 throttled binds and 2.4–3.2 s unthrottled, this one 2.2 and 2.1–2.4 s, with a
    // peak RSS of 54 instead of 67–73 MiB.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let start = async move {
        let text = match config {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
            }
            None => String::new(),
        };
        let mut config = parse(&text).map_err(anyhow::Error::msg)?;
        let format = log_format(&mut config);
        if let Some(f) = &flags.log_format {
            *format = match f.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => anyhow::bail!("--log-format {other:?}: use text or json"),
            };
        }
        let format = *format;
        if flags.check_config {
            println!("config ok");
            return Ok(());
        }
        init_logging(format);
        run(config).await
    };
    match runtime.block_on(start) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stdout as text or JSON lines, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let directives = log_directives(std::env::var("RUST_LOG").ok().as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|_| "info".into());
    match format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        // Colours only on a terminal: log collectors would store the escape codes.
        LogFormat::Text => tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_env_filter(filter)
            .init(),
    }
}

/// `RUST_LOG` (default `info`), with the kube client's own line per failed request off unless `RUST_LOG`
/// names the kube client: the callers log each failure with its cause, throttled to a line per cause per
/// interval, where the client's line would repeat for every request of an outage.
pub fn log_directives(rust_log: Option<&str>) -> String {
    let base = rust_log.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("info");
    if base.contains("kube_client") { base.to_string() } else { format!("{base},{KUBE_CLIENT_REQUEST_LOG}=off") }
}

/// Where tower-http's trace layer in kube's client logs every failed request at ERROR.
const KUBE_CLIENT_REQUEST_LOG: &str = "kube_client::client::builder";

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what the kubelet sends before killing the pod).
pub async fn shutdown_signal() {
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

#[cfg(test)]
mod log_tests {
    use super::log_directives;

    #[test]
    fn the_kube_clients_per_request_line_is_off_unless_rust_log_asks_for_the_kube_client() {
        assert_eq!(log_directives(None), "info,kube_client::client::builder=off");
        assert_eq!(log_directives(Some(" ")), "info,kube_client::client::builder=off");
        assert_eq!(log_directives(Some("debug,tower=warn")), "debug,tower=warn,kube_client::client::builder=off");
        assert_eq!(log_directives(Some("info,kube_client=debug")), "info,kube_client=debug");
        // The result is a filter tracing accepts.
        assert!(tracing_subscriber::EnvFilter::try_new(log_directives(Some("warn"))).is_ok());
    }
}
