//! `mlsched-autoscaler`: the autoscaler sidecar binary. Finds its cluster like kubectl (KUBECONFIG, else in-cluster).

use std::path::PathBuf;

use clap::Parser;
use mlsched_autoscaler::config::Config;
use mlsched_edge::cli::{self, Flags};

#[derive(Parser)]
#[command(name = "mlsched-autoscaler", about = "Hybrid HPA/VPA autoscaler for mlsched workloads")]
struct Args {
    /// YAML config file; without it the defaults apply (see autoscaler/README.md).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    cli::main(
        "mlsched-autoscaler",
        args.config.as_deref(),
        args.flags,
        |text| Config::from_yaml(text).map_err(|e| e.to_string()),
        |c| &mut c.log_format,
        |config| async move {
            let client = mlsched_edge::kube_client::client().await?;
            mlsched_autoscaler::run(config, client, cli::shutdown_signal(), None).await
        },
    )
}
