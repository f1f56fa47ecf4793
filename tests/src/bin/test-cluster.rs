//! A real Kubernetes control plane on loopback with a small fake GPU cluster, for running `mlsched` by hand:
//! etcd, kube-apiserver and kube-controller-manager from `tests/cluster/` (built on first use), mlsched's
//! CRDs and RBAC applied as published, fake GPU nodes on a fat tree and an example workload.
//!
//! ```sh
//! cargo run --release -p mlsched-tests --bin test-cluster &
//! KUBECONFIG=./mlsched-kubeconfig cargo run --release -p mlsched-scheduler --bin mlsched -- --config ./mlsched-config.yaml
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::{GpuClusterSpec, example_workload, gpu_cluster_nodes};
use mlsched_tests::podgroup_api_resource;
use mlsched_tests::real::{Cluster, Options, objects};
use mlsched_tests::testing::typed;

#[derive(Parser)]
#[command(name = "test-cluster", about = "A real control plane on loopback with fake GPU nodes, until Ctrl-C")]
struct Args {
    /// Where to write the kubeconfig of the `mlsched` ServiceAccount (what the scheduler runs as).
    #[arg(long, default_value = "mlsched-kubeconfig")]
    kubeconfig: PathBuf,
    /// Where to write a kubeconfig with full rights (`system:masters`), for kubectl.
    #[arg(long, default_value = "admin-kubeconfig")]
    admin_kubeconfig: PathBuf,
    /// Where to write the scheduler's config: the one `manifests/config.yaml` publishes.
    #[arg(long, default_value = "mlsched-config.yaml")]
    config: PathBuf,
    #[arg(long, default_value_t = 2)]
    spines: u32,
    #[arg(long, default_value_t = 2)]
    racks_per_spine: u32,
    #[arg(long, default_value_t = 4)]
    nodes_per_rack: u32,
    #[arg(long, default_value_t = 8)]
    gpus_per_node: u32,
    /// Namespace of the example workload.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Nodes only, no example workload.
    #[arg(long)]
    no_pods: bool,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn seed(client: &Client, args: &Args) -> Result<(usize, usize), Error> {
    let spec = GpuClusterSpec {
        spines: args.spines,
        racks_per_spine: args.racks_per_spine,
        nodes_per_rack: args.nodes_per_rack,
        gpus_per_node: args.gpus_per_node,
        ..GpuClusterSpec::default()
    };
    let nodes = gpu_cluster_nodes(&spec);
    let node_count = nodes.len();
    for node in nodes {
        objects::add_node(client, node).await?;
    }
    if args.no_pods {
        return Ok((node_count, 0));
    }
    objects::create_namespace(client, &args.namespace).await?;
    let (groups, pods) = example_workload(&args.namespace);
    let group_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &args.namespace, &podgroup_api_resource());
    for g in groups {
        group_api.create(&PostParams::default(), &typed(g)).await?;
    }
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let pod_count = pods.len();
    for p in pods {
        pod_api.create(&PostParams::default(), &typed(p)).await?;
    }
    Ok((node_count, pod_count))
}

/// The `config.yaml` key of the published ConfigMap.
fn published_config() -> Result<String, Error> {
    let path = mlsched_tests::real::binaries::repo_root().join("manifests/config.yaml");
    let map: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path)?)?;
    Ok(map["data"]["config.yaml"].as_str().ok_or("manifests/config.yaml has no data.config.yaml")?.to_string())
}

async fn print_bindings(client: &Client, namespace: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for p in pods.list(&ListParams::default()).await? {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "(pending)".into());
        println!("{namespace}/{} -> {node}", p.name_any());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!("test-cluster: starting etcd, kube-apiserver and kube-controller-manager (the first run builds them)");
    let cluster = match Cluster::start(Options::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("test-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let copies = [
        (&cluster.mlsched_kubeconfig, &args.kubeconfig),
        (&cluster.control_plane.admin_kubeconfig, &args.admin_kubeconfig),
    ];
    for (from, to) in copies {
        if let Err(e) = std::fs::copy(from, to) {
            eprintln!("test-cluster: writing {}: {e}", to.display());
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = published_config().and_then(|c| Ok(std::fs::write(&args.config, c)?)) {
        eprintln!("test-cluster: writing {}: {e}", args.config.display());
        return ExitCode::FAILURE;
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = rt.block_on(async {
        let client = cluster.control_plane.admin_client().await;
        let (nodes, pods) = seed(&client, &args).await?;
        println!(
            "test-cluster: {} ready: {nodes} fake GPU nodes, {pods} pending pods for schedulerName mlsched in {}",
            cluster.control_plane.url, args.namespace
        );
        println!("  KUBECONFIG={} (the mlsched ServiceAccount)", args.kubeconfig.display());
        println!("  KUBECONFIG={} (admin)", args.admin_kubeconfig.display());
        println!("  scheduler config: {} (from manifests/config.yaml)", args.config.display());
        println!("  logs: {}", cluster.control_plane.dir.display());
        tokio::signal::ctrl_c().await?;
        print_bindings(&client, &args.namespace).await
    });
    drop(rt);
    cluster.control_plane.stop();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}
