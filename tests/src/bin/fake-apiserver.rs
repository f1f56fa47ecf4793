//! Stand-alone API server double with a small fake GPU cluster, for running `mlsched` by hand.
//!
//! `fake-apiserver [--port 6443] [--kubeconfig PATH] [--spines 2] [--racks-per-spine 2] [--nodes-per-rack 4]
//!                 [--gpus-per-node 8] [--namespace default] [--no-pods]`

use std::path::PathBuf;
use std::process::ExitCode;

use mlsched_tests::ApiServer;
use mlsched_tests::cluster::{GpuClusterSpec, seed_example_workload, seed_gpu_cluster};

const USAGE: &str =
    "usage: fake-apiserver [--port N (default 6443, 0 = any)] [--kubeconfig PATH (default ./fake-kubeconfig)]
                      [--spines N] [--racks-per-spine N] [--nodes-per-rack N] [--gpus-per-node N]
                      [--namespace NS] [--no-pods]";

struct Args {
    port: u16,
    kubeconfig: PathBuf,
    spec: GpuClusterSpec,
    namespace: String,
    pods: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 6443,
        kubeconfig: PathBuf::from("fake-kubeconfig"),
        spec: GpuClusterSpec::default(),
        namespace: "default".into(),
        pods: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |s: String| s.parse::<u32>().map_err(|e| format!("{s}: {e}"));
        match flag.as_str() {
            "--port" => a.port = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--kubeconfig" => a.kubeconfig = PathBuf::from(value("--kubeconfig")?),
            "--spines" => a.spec.spines = num(value("--spines")?)?,
            "--racks-per-spine" => a.spec.racks_per_spine = num(value("--racks-per-spine")?)?,
            "--nodes-per-rack" => a.spec.nodes_per_rack = num(value("--nodes-per-rack")?)?,
            "--gpus-per-node" => a.spec.gpus_per_node = num(value("--gpus-per-node")?)?,
            "--namespace" => a.namespace = value("--namespace")?,
            "--no-pods" => a.pods = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let server = match ApiServer::builder().port(args.port).kubeconfig_path(&args.kubeconfig).serve().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-apiserver: cannot start on port {}: {e}", args.port);
            return ExitCode::FAILURE;
        }
    };
    let nodes = match seed_gpu_cluster(server.state(), &args.spec) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("fake-apiserver: seeding nodes failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pods = if args.pods {
        match seed_example_workload(server.state(), &args.namespace) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("fake-apiserver: seeding pods failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Vec::new()
    };
    println!("fake-apiserver listening on {}", server.url());
    println!("kubeconfig written to {}", server.kubeconfig_path().display());
    println!(
        "cluster: {} nodes ({} spines x {} racks x {} nodes, {} GPUs each); {} pending pods in namespace {}",
        nodes.len(),
        args.spec.spines,
        args.spec.racks_per_spine,
        args.spec.nodes_per_rack,
        args.spec.gpus_per_node,
        pods.len(),
        args.namespace
    );
    println!("Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    let bindings = server.state().bindings();
    println!("stopping; {} bindings served:", bindings.len());
    for b in &bindings {
        println!("  {}/{} -> {}", b.namespace, b.pod, b.node);
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
