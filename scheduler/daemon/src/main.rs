//! `mlsched`: the scheduler binary. Finds its cluster like kubectl (KUBECONFIG, else in-cluster).

use std::path::PathBuf;

use clap::Parser;
use mlsched_edge::cli::{self, Flags};
use mlsched_scheduler::config::Config;

// Not glibc malloc: see the dependency's comment in Cargo.toml.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "mlsched", about = "Gang-, GPU- and topology-aware Kubernetes scheduler")]
struct Args {
    /// YAML config file; without it the defaults apply (see scheduler/daemon/README.md).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    cli::main(
        "mlsched",
        args.config.as_deref(),
        args.flags,
        |text| Config::from_yaml(text).map_err(|e| e.to_string()),
        |c| &mut c.log_format,
        |config| async move {
            let (api, evictions) = mlsched_edge::kube_client::client_and_one_without_retries().await?;
            let clients = mlsched_scheduler::Clients { api, evictions };
            mlsched_scheduler::run(config, clients, cli::shutdown_signal(), None).await
        },
    )
}
