//! kube-scheduler and mlsched in turn on one real control plane (etcd, kube-apiserver, kube-controller-manager,
//! built from the pinned Go module in `tests/cluster/`): the same fake nodes, the same pods. A measured run,
//! not a timed test. Prints a markdown table on stdout, progress on stderr.
//!
//! ```sh
//! cargo bench -p mlsched-scheduler --bench live -- \
//!     [--nodes 1000] [--pods 5000] [--limits 50/100,1000/1000] [--modes pending,arriving] \
//!     [--schedulers kube-scheduler,mlsched] [--scale 5000/10000 | --no-scale] [--timeout SECONDS] \
//!     [--mlsched-bin PATH] [--mlsched-config YAML] [--repeat 1]
//! ```
//!
//! `--mlsched-bin` runs another build of the scheduler (an earlier one, to compare); `--mlsched-config` adds
//! lines to its config file (`'bindConcurrency: 64'`).
//!
//! Cells: every mode × client limit at `--nodes` × `--pods`, then kube-scheduler's own scale point (5,000 nodes,
//! 10,000 pods) once, pods pending, at the last limit. Each cell runs every scheduler in turn, in a fresh
//! namespace; the pods and the Events of a run are deleted before the next one, so every run starts from
//! the same cluster (with them kept, consecutive runs of one cell grew dearer: 0.30, 0.39, 0.44 CPU-s per
//! 1,000 binds for mlsched's pending 1000/1000 cell).
//!
//! `--repeat N` runs the cells at `--nodes` in N rounds, each round every cell once, the schedulers in turn
//! (so that a drift of the machine over the session spreads over all cells alike), and the scale point once.
//! A row is then the median of each figure over its runs, the worst for over-commits, double binds, pods
//! bound and Events written; its CPU per 1,000 binds also shows the lowest and highest run. On a shared
//! 2-core machine a run's CPU seconds move by a quarter from run to run (the API server takes most of a core
//! beside the scheduler), enough to reverse a comparison between two cells.
//!
//! - Nodes: 8 × `nvidia.com/gpu`, 96 CPUs, 1 TiB; 10 per rack, 10 racks per spine (topology labels). No kubelet:
//!   the harness creates them Ready.
//! - Pods: half ask for whole GPUs (plain `nvidia.com/gpu`, which both schedulers place; every tenth 2 GPUs), half
//!   for CPU and memory only. All name the same `schedulerName`, served by the profile of whichever scheduler runs.
//! - `pending`: the pods exist before the scheduler starts; binds/s counts from its start to the last bind.
//!   `arriving`: the scheduler is started and has bound a canary pod, then the pods are created (32 requests in
//!   flight); binds/s counts from the first creation to the last bind.
//! - Latency: from the moment the pod's create request was sent (creationTimestamp has 1-s resolution) to the
//!   moment this process's watch saw `spec.nodeName` set.
//! - The scheduler runs as a child process: kube-scheduler with a KubeSchedulerConfiguration (clientConnection
//!   qps/burst, no leader election, no serving port) and a client certificate of `system:kube-scheduler`; mlsched
//!   with a config file (`client: {qps, burst}`, the topology levels) and the `mlsched` ServiceAccount's token.
//!   Once every pod is bound it is stopped with SIGTERM; its CPU seconds (utime + stime) are read when it has
//!   exited, its peak RSS (VmHWM) just before the signal. The API server's CPU seconds cover the same span.
//! - Checks: over-committed nodes (bound GPU requests above the node's allocatable GPUs) and double binds (a pod
//!   seen on two nodes, or with more than one `Scheduled` Event) must both be 0. `Scheduled` Events are counted
//!   once the scheduler has exited: the ones it had not written by then are lost.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::{GPU_RESOURCE, LABEL_RACK, LABEL_SPINE, gpu_node};
use mlsched_tests::real::process::{Process, free_port};
use mlsched_tests::real::{Cluster, Options, objects};
use serde_json::{Value, json};

/// The `schedulerName` of every pod; both schedulers get a profile of this name.
const SCHEDULER_NAME: &str = "bench-scheduler";
const GPUS_PER_NODE: u32 = 8;
const CANARY: &str = "canary";
/// Pod creations in flight at once.
const CREATE_CONCURRENCY: usize = 32;
const NODE_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Pending,
    Arriving,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scheduler {
    #[value(name = "kube-scheduler")]
    Kube,
    Mlsched,
}

impl Scheduler {
    fn name(self) -> &'static str {
        match self {
            Scheduler::Kube => "kube-scheduler",
            Scheduler::Mlsched => "mlsched",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limit {
    qps: u32,
    burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    nodes: usize,
    pods: usize,
    limit: Limit,
    mode: Mode,
}

/// Two positive integers written `A/B` (`qps/burst`, `nodes/pods`).
fn parse_pair(text: &str) -> Result<(u32, u32), String> {
    let (a, b) = text.split_once('/').ok_or("expected A/B")?;
    match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) if a > 0 && b > 0 => Ok((a, b)),
        _ => Err("expected two positive integers A/B".into()),
    }
}

fn parse_limit(text: &str) -> Result<Limit, String> {
    parse_pair(text).map(|(qps, burst)| Limit { qps, burst })
}

#[derive(clap::Parser)]
#[command(name = "live", about = "kube-scheduler and mlsched in turn on one real control plane")]
struct Flags {
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    nodes: u32,
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    pods: u32,
    /// Client limits as qps/burst, one cell each.
    #[arg(long, value_delimiter = ',', default_value = "50/100,1000/1000", value_parser = parse_limit)]
    limits: Vec<Limit>,
    #[arg(long, value_delimiter = ',', default_value = "pending,arriving")]
    modes: Vec<Mode>,
    #[arg(long, value_delimiter = ',', default_value = "kube-scheduler,mlsched")]
    schedulers: Vec<Scheduler>,
    /// The scale point as nodes/pods, pods pending, at the last client limit.
    #[arg(long, default_value = "5000/10000", value_parser = parse_pair, conflicts_with = "no_scale")]
    scale: (u32, u32),
    /// No scale point.
    #[arg(long)]
    no_scale: bool,
    /// Seconds a run may take before it is reported as timed out.
    #[arg(long)]
    timeout: Option<u64>,
    /// Another build of the scheduler (an earlier one, to compare) [default: this build's `mlsched`].
    #[arg(long, default_value = env!("CARGO_BIN_EXE_mlsched"), hide_default_value = true)]
    mlsched_bin: PathBuf,
    /// Lines added to mlsched's config file (`'bindConcurrency: 64'`).
    #[arg(long, default_value = "")]
    mlsched_config: String,
    /// Rounds of the cells at `--nodes` (the scale point runs once); the table shows medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Args {
    /// Each cell with its number of runs.
    cells: Vec<(Cell, usize)>,
    schedulers: Vec<Scheduler>,
    timeout: Option<Duration>,
    mlsched_bin: PathBuf,
    mlsched_config: String,
}

fn parse_args() -> Args {
    let flags = <Flags as clap::Parser>::parse();
    let (nodes, pods) = (flags.nodes as usize, flags.pods as usize);
    let mut cells = Vec::new();
    for &mode in &flags.modes {
        for &limit in &flags.limits {
            cells.push((Cell { nodes, pods, limit, mode }, flags.repeat as usize));
        }
    }
    if !flags.no_scale {
        let limit = *flags.limits.last().expect("limits has a default");
        let (nodes, pods) = flags.scale;
        cells.push((Cell { nodes: nodes as usize, pods: pods as usize, limit, mode: Mode::Pending }, 1));
    }
    // Nodes are only ever added: the cells with fewer nodes come first.
    cells.sort_by_key(|(c, _)| c.nodes);
    Args {
        cells,
        schedulers: flags.schedulers,
        timeout: flags.timeout.map(Duration::from_secs),
        mlsched_bin: flags.mlsched_bin,
        mlsched_config: if flags.mlsched_config.is_empty() { String::new() } else { flags.mlsched_config + "\n" },
    }
}

// ----- /proc -----

/// `(utime + stime)` in seconds and the state letter, from `/proc/<pid>/stat` (clock ticks of 1/100 s).
fn proc_stat(pid: u32) -> Option<(f64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the file; `after_comm` starts at field 3.
    Some(((ticks(11) + ticks(12)) / 100.0, state))
}

fn cpu_seconds(pid: u32) -> f64 {
    proc_stat(pid).map_or(0.0, |(cpu, _)| cpu)
}

/// A `/proc/<pid>/status` value in MiB (`VmHWM`).
fn status_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim_start_matches(':').split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

// ----- the workload -----

fn node_object(i: usize) -> Value {
    let (rack, spine) = (i / 10, i / 100);
    gpu_node(
        &format!("node-{i:05}"),
        GPUS_PER_NODE,
        96,
        1024,
        &[
            (LABEL_SPINE, &format!("spine-{spine}")),
            (LABEL_RACK, &format!("rack-{rack}")),
            ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
        ],
    )
}

/// Pod `i` of a run: even ones whole-GPU (every tenth of them 2 GPUs), odd ones CPU and memory only.
fn pod_object(namespace: &str, i: usize) -> (String, Value, u32) {
    let (name, requests, limits, gpus) = if i.is_multiple_of(2) {
        let gpus = if (i / 2) % 10 == 9 { 2 } else { 1 };
        (
            format!("gpu-{i}"),
            json!({"cpu": "4", "memory": "32Gi", GPU_RESOURCE: gpus.to_string()}),
            json!({GPU_RESOURCE: gpus.to_string()}),
            gpus,
        )
    } else {
        (format!("cpu-{i}"), json!({"cpu": "2", "memory": "8Gi"}), json!({}), 0)
    };
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}},
        "spec": {
            "schedulerName": SCHEDULER_NAME,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": "registry.example/train:latest",
                            "resources": {"requests": requests, "limits": limits}}],
        },
    });
    (name, pod, gpus)
}

async fn add_nodes(client: &Client, from: usize, to: usize) {
    if from >= to {
        return;
    }
    eprintln!("adding nodes {from}..{to}");
    let started = Instant::now();
    futures::stream::iter(from..to)
        .map(|i| {
            let client = client.clone();
            async move { objects::add_node(&client, node_object(i)).await.map(|_| ()) }
        })
        .buffer_unordered(NODE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| panic!("adding nodes: {e}"));
    eprintln!("  {} nodes in {:.1} s", to - from, started.elapsed().as_secs_f64());
}

/// Creates the pods, recording when each create request was sent.
async fn create_pods(client: &Client, namespace: &str, count: usize) -> HashMap<String, Instant> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let created = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let (name, pod, _) = pod_object(namespace, i);
            async move {
                let pod: Pod = serde_json::from_value(pod).expect("pod");
                let sent = Instant::now();
                api.create(&PostParams::default(), &pod).await.map(|_| (name, sent))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<HashMap<_, _>>()
        .await;
    created.unwrap_or_else(|e| panic!("creating pods: {e}"))
}

// ----- what the watches saw -----

#[derive(Default)]
struct Seen {
    pods_synced: bool,
    events_synced: bool,
    pods: HashSet<String>,
    /// Pod → (first seen bound, node).
    bound: HashMap<String, (Instant, String)>,
    /// Pods seen on a second node.
    moved: usize,
    /// Scheduled Event name → (pod, count, when it was first seen or last counted up).
    events: HashMap<String, (String, i32, Instant)>,
}

impl Seen {
    fn bound_of(&self, exclude: &str) -> usize {
        self.bound.len() - usize::from(self.bound.contains_key(exclude))
    }
}

fn watch_pods(client: &Client, namespace: &str, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let mut s = seen.lock().expect("seen");
            let pod = match event {
                Ok(WatchEvent::Apply(p) | WatchEvent::InitApply(p)) => p,
                Ok(WatchEvent::InitDone) => {
                    s.pods_synced = true;
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("  pod watch: {e}");
                    continue;
                }
            };
            let name = pod.name_any();
            s.pods.insert(name.clone());
            let Some(node) = pod.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()) else { continue };
            let moved = match s.bound.get(&name) {
                Some((_, first)) => *first != node,
                None => {
                    s.bound.insert(name, (now, node));
                    false
                }
            };
            s.moved += usize::from(moved);
        }
    })
}

fn watch_scheduled_events(client: &Client, namespace: &str, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    tokio::spawn(async move {
        let config = watcher::Config::default().fields("reason=Scheduled");
        let mut stream = std::pin::pin!(watcher::watcher(api, config));
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let mut s = seen.lock().expect("seen");
            let e = match event {
                Ok(WatchEvent::Apply(e) | WatchEvent::InitApply(e)) => e,
                Ok(WatchEvent::InitDone) => {
                    s.events_synced = true;
                    continue;
                }
                Ok(_) => continue,
                Err(err) => {
                    eprintln!("  event watch: {err}");
                    continue;
                }
            };
            // Aggregated Events count their repeats in `count` (core/v1) or `series.count` (events.k8s.io).
            let count = e.count.unwrap_or(1).max(e.series.as_ref().and_then(|x| x.count).unwrap_or(1)).max(1);
            let pod = e.involved_object.name.clone().unwrap_or_default();
            let entry = s.events.entry(e.name_any()).or_insert((pod, 0, now));
            if count > entry.1 {
                entry.1 = count;
                entry.2 = now;
            }
        }
    })
}

// ----- the schedulers -----

struct Identities {
    kube_scheduler_kubeconfig: PathBuf,
    mlsched_kubeconfig: PathBuf,
}

fn write_identities(cluster: &Cluster, dir: &Path) -> Identities {
    let cp = &cluster.control_plane;
    let cert = cp.pki.client("bench-kube-scheduler", "system:kube-scheduler", &[]).expect("kube-scheduler cert");
    let kubeconfig = dir.join("kube-scheduler.kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: {}\n    \
         certificate-authority: {}\nusers:\n- name: kube-scheduler\n  user:\n    client-certificate: {}\n    \
         client-key: {}\ncontexts:\n- name: bench\n  context:\n    cluster: bench\n    user: kube-scheduler\n\
         current-context: bench\n",
        cp.url,
        cp.pki.ca.cert.display(),
        cert.cert.display(),
        cert.key.display()
    );
    std::fs::write(&kubeconfig, text).expect("kube-scheduler kubeconfig");
    Identities { kube_scheduler_kubeconfig: kubeconfig, mlsched_kubeconfig: cluster.mlsched_kubeconfig.clone() }
}

fn start_scheduler(
    which: Scheduler,
    limit: Limit,
    run: usize,
    cluster: &Cluster,
    ids: &Identities,
    args: &Args,
    dir: &Path,
) -> Process {
    let name = format!("{run:02}-{}", which.name());
    match which {
        Scheduler::Kube => {
            let config = dir.join(format!("{name}.yaml"));
            let text = format!(
                "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
                 clientConnection:\n  kubeconfig: {}\n  qps: {}\n  burst: {}\nleaderElection:\n  leaderElect: false\n\
                 profiles:\n- schedulerName: {SCHEDULER_NAME}\n",
                ids.kube_scheduler_kubeconfig.display(),
                limit.qps,
                limit.burst
            );
            std::fs::write(&config, text).expect("kube-scheduler config");
            let args = vec![format!("--config={}", config.display()), "--secure-port=0".into()];
            let program = cluster.control_plane.binaries.path("kube-scheduler");
            Process::start(&name, &program, &args, dir).expect("start kube-scheduler")
        }
        Scheduler::Mlsched => {
            let config = dir.join(format!("{name}.yaml"));
            let text = format!(
                "profiles:\n  - schedulerName: {SCHEDULER_NAME}\n\
                 topologyLevels: [{LABEL_SPINE}, {LABEL_RACK}, kubernetes.io/hostname]\n\
                 client: {{qps: {}, burst: {}}}\nleaderElection: {{enabled: false}}\n\
                 listenAddress: 127.0.0.1:{}\nplacementApi: 127.0.0.1:{}\n",
                limit.qps,
                limit.burst,
                free_port().expect("port"),
                free_port().expect("port")
            );
            std::fs::write(&config, text + &args.mlsched_config).expect("mlsched config");
            let kubeconfig = ids.mlsched_kubeconfig.display().to_string();
            let flags = vec!["--config".to_string(), config.display().to_string()];
            Process::start_with_env(&name, &args.mlsched_bin, &flags, &[("KUBECONFIG", &kubeconfig)], dir)
                .expect("start mlsched")
        }
    }
}

/// SIGTERM, then waits (at most `grace`) until the process has exited, and returns its CPU seconds read while
/// it is a zombie (the totals of all its threads); SIGKILL after the grace.
async fn stop_and_measure(mut process: Process, grace: Duration) -> (f64, Duration, bool) {
    let pid = process.pid();
    let mut cpu = cpu_seconds(pid);
    let asked = Instant::now();
    process.signal(libc::SIGTERM);
    let mut clean = false;
    while asked.elapsed() < grace {
        match proc_stat(pid) {
            Some((c, 'Z' | 'X')) => {
                cpu = c;
                clean = true;
                break;
            }
            Some((c, _)) => cpu = c,
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = asked.elapsed();
    process.kill();
    (cpu, took, clean)
}

struct Row {
    scheduler: Scheduler,
    cell: Cell,
    bound: usize,
    binds_per_s: f64,
    p50: f64,
    p99: f64,
    peak_mib: f64,
    cpu: f64,
    apiserver_cpu: f64,
    overcommitted: usize,
    double_binds: usize,
    events: usize,
    last_event_after_bind: Option<f64>,
    stop_seconds: f64,
    /// Runs this row stands for, and the lowest and highest CPU s per 1,000 binds among them.
    runs: usize,
    cpu_per_k_range: (f64, f64),
}

impl Row {
    fn cpu_per_k(&self) -> f64 {
        1000.0 * self.cpu / self.bound.max(1) as f64
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One row for the runs of one scheduler in one cell: the median of each figure, the worst of the checks.
fn aggregate(runs: Vec<Row>) -> Option<Row> {
    let first = runs.first()?;
    let med = |f: &dyn Fn(&Row) -> f64| median(runs.iter().map(f).collect());
    let per_k: Vec<f64> = runs.iter().map(Row::cpu_per_k).collect();
    let bound = runs.iter().map(|r| r.bound).min().unwrap_or(0);
    let cpu_per_k = median(per_k.clone());
    Some(Row {
        scheduler: first.scheduler,
        cell: first.cell,
        bound,
        binds_per_s: med(&|r| r.binds_per_s),
        p50: med(&|r| r.p50),
        p99: med(&|r| r.p99),
        peak_mib: med(&|r| r.peak_mib),
        // So that the row's CPU s per 1,000 binds is the median run's.
        cpu: cpu_per_k * bound.max(1) as f64 / 1000.0,
        apiserver_cpu: med(&|r| r.apiserver_cpu),
        overcommitted: runs.iter().map(|r| r.overcommitted).max().unwrap_or(0),
        double_binds: runs.iter().map(|r| r.double_binds).max().unwrap_or(0),
        events: runs.iter().map(|r| r.events).min().unwrap_or(0),
        last_event_after_bind: runs
            .iter()
            .all(|r| r.last_event_after_bind.is_some())
            .then(|| med(&|r| r.last_event_after_bind.unwrap_or(f64::NAN))),
        stop_seconds: med(&|r| r.stop_seconds),
        runs: runs.len(),
        cpu_per_k_range: (
            per_k.iter().copied().fold(f64::INFINITY, f64::min),
            per_k.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Nodes whose bound pods ask for more GPUs than the node has.
async fn overcommitted_nodes(client: &Client, namespace: &str) -> usize {
    let nodes: Api<Node> = Api::all(client.clone());
    let allocatable: HashMap<String, i64> = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .into_iter()
        .map(|n| {
            let gpus = n
                .status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref())
                .and_then(|a| a.get(GPU_RESOURCE))
                .and_then(|q| q.0.parse::<i64>().ok())
                .unwrap_or(0);
            (n.name_any(), gpus)
        })
        .collect();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut used: HashMap<String, i64> = HashMap::new();
    for p in pods.list(&ListParams::default()).await.expect("list pods") {
        let Some(spec) = p.spec else { continue };
        let Some(node) = spec.node_name else { continue };
        let gpus: i64 = spec
            .containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(GPU_RESOURCE)?.0.parse::<i64>().ok())
            .sum();
        *used.entry(node).or_default() += gpus;
    }
    used.iter().filter(|(node, gpus)| **gpus > allocatable.get(*node).copied().unwrap_or(0)).count()
}

async fn delete_run_pods(client: &Client, namespace: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    if let Err(e) = api.delete_collection(&now, &ListParams::default()).await {
        eprintln!("  deleting the pods of {namespace}: {e}");
    }
    let started = Instant::now();
    loop {
        let left = api.list_metadata(&ListParams::default().limit(1)).await.map(|l| l.items.len()).unwrap_or(1);
        if left == 0 {
            return;
        }
        if started.elapsed() > Duration::from_secs(300) {
            panic!("the pods of {namespace} were not deleted within 300 s");
        }
        // Whatever a collection delete left behind (pods created after its list) goes one by one.
        if started.elapsed() > Duration::from_secs(30) {
            let _ = objects::force_delete_pods(client, namespace).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes the Events of a run (both schedulers write one per bind) and waits until they are gone.
async fn delete_run_events(client: &Client, namespace: &str) {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    if let Err(e) = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await {
        eprintln!("  deleting the Events of {namespace}: {e}");
    }
    let started = Instant::now();
    while api.list_metadata(&ListParams::default().limit(1)).await.map(|l| l.items.len()).unwrap_or(1) > 0 {
        if started.elapsed() > Duration::from_secs(120) {
            eprintln!("  the Events of {namespace} were not all deleted within 120 s");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_until(
    what: &str,
    deadline: Duration,
    process: &mut Process,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while !done() {
        if let Some(status) = process.exited() {
            return Err(format!(
                "{} exited ({status}) while waiting for {what}:\n{}",
                process.name,
                process.log_tail(20)
            ));
        }
        if started.elapsed() > deadline {
            return Err(format!("{what}: not done after {} s", deadline.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    run: usize,
    which: Scheduler,
    cell: Cell,
    cluster: &Cluster,
    client: &Client,
    ids: &Identities,
    args: &Args,
    dir: &Path,
) -> Result<Row, String> {
    let namespace = format!("bench-{run:02}");
    objects::create_namespace(client, &namespace).await.map_err(|e| format!("namespace: {e}"))?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watches =
        [watch_pods(client, &namespace, seen.clone()), watch_scheduled_events(client, &namespace, seen.clone())];
    let synced = || {
        let s = seen.lock().expect("seen");
        s.pods_synced && s.events_synced
    };
    while !synced() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = cell.pods;
    let timeout =
        args.timeout.unwrap_or(Duration::from_secs((120 + 3 * n as u64 / u64::from(cell.limit.qps)).max(600)));
    let apiserver = cluster.control_plane.apiserver_pid();
    let (mut process, created, t0, apiserver_cpu0) = match cell.mode {
        Mode::Pending => {
            let created = create_pods(client, &namespace, n).await;
            while seen.lock().expect("seen").pods.len() < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let apiserver_cpu0 = cpu_seconds(apiserver);
            let t0 = Instant::now();
            let process = start_scheduler(which, cell.limit, run, cluster, ids, args, dir);
            (process, created, t0, apiserver_cpu0)
        }
        Mode::Arriving => {
            let apiserver_cpu0 = cpu_seconds(apiserver);
            let mut process = start_scheduler(which, cell.limit, run, cluster, ids, args, dir);
            let (_, canary, _) = pod_object(&namespace, 1);
            let mut canary: Pod = serde_json::from_value(canary).expect("canary");
            canary.metadata.name = Some(CANARY.into());
            Api::<Pod>::namespaced(client.clone(), &namespace)
                .create(&PostParams::default(), &canary)
                .await
                .map_err(|e| format!("canary: {e}"))?;
            wait_until("the canary pod's bind", Duration::from_secs(120), &mut process, || {
                seen.lock().expect("seen").bound.contains_key(CANARY)
            })
            .await?;
            let t0 = Instant::now();
            let created = create_pods(client, &namespace, n).await;
            (process, created, t0, apiserver_cpu0)
        }
    };
    let all_bound =
        wait_until("every pod's bind", timeout, &mut process, || seen.lock().expect("seen").bound_of(CANARY) >= n)
            .await;
    if let Err(e) = &all_bound {
        eprintln!("  {e}");
    }
    let peak_mib = status_mib(process.pid(), "VmHWM");
    let (cpu, stop_took, clean) = stop_and_measure(process, Duration::from_secs(60)).await;
    if !clean {
        eprintln!("  the scheduler did not exit within 60 s of SIGTERM; killed");
    }
    // The Events the scheduler wrote before it exited reach this watch within a moment.
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = seen.lock().expect("seen").events.len();
        if now == last {
            break;
        }
        last = now;
    }
    let apiserver_cpu = cpu_seconds(apiserver) - apiserver_cpu0;
    let overcommitted = overcommitted_nodes(client, &namespace).await;
    for w in watches {
        w.abort();
    }
    let row = {
        let s = seen.lock().expect("seen");
        let binds: Vec<(&String, &Instant)> =
            s.bound.iter().filter(|(k, _)| *k != CANARY).map(|(k, (t, _))| (k, t)).collect();
        let last_bind = binds.iter().map(|(_, t)| **t).max();
        let mut latencies: Vec<f64> = binds
            .iter()
            .filter_map(|(k, t)| Some(t.saturating_duration_since(*created.get(*k)?).as_secs_f64()))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let mut per_pod: HashMap<&str, i32> = HashMap::new();
        let mut last_event: Option<Instant> = None;
        for (pod, count, at) in s.events.values() {
            if pod == CANARY {
                continue;
            }
            *per_pod.entry(pod.as_str()).or_default() += count;
            last_event = last_event.max(Some(*at));
        }
        let double_binds = s.moved + per_pod.values().filter(|c| **c > 1).count();
        let span = last_bind.map_or(f64::NAN, |t| t.saturating_duration_since(t0).as_secs_f64());
        Row {
            scheduler: which,
            cell,
            bound: binds.len(),
            binds_per_s: binds.len() as f64 / span,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            peak_mib,
            cpu,
            apiserver_cpu,
            overcommitted,
            double_binds,
            events: per_pod.len(),
            last_event_after_bind: match (last_event, last_bind) {
                (Some(e), Some(b)) if e >= b => Some(e.duration_since(b).as_secs_f64()),
                (Some(e), Some(b)) => Some(-b.duration_since(e).as_secs_f64()),
                _ => None,
            },
            stop_seconds: stop_took.as_secs_f64(),
            runs: 1,
            cpu_per_k_range: (f64::NAN, f64::NAN),
        }
    };
    delete_run_pods(client, &namespace).await;
    delete_run_events(client, &namespace).await;
    Ok(row)
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Pending => "pending",
        Mode::Arriving => "arriving",
    }
}

fn print_table(rows: &[Row]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| scheduler | nodes | pods | pods were | client qps/burst | runs | bound | binds/s | p50 s | p99 s \
         | peak RSS MiB | CPU s | CPU s per 1k binds | API server CPU s | over-committed nodes | double binds \
         | Scheduled Events | last bind → last Event s |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let last_event = r.last_event_after_bind.map_or("–".to_string(), |s| format!("{s:.1}"));
        let per_k = if r.runs > 1 {
            format!("{:.2} ({:.2}–{:.2})", r.cpu_per_k(), r.cpu_per_k_range.0, r.cpu_per_k_range.1)
        } else {
            format!("{:.2}", r.cpu_per_k())
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}/{} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {} | {:.1} | {} | {} | {} | {} |",
            r.scheduler.name(),
            r.cell.nodes,
            r.cell.pods,
            mode_name(r.cell.mode),
            r.cell.limit.qps,
            r.cell.limit.burst,
            r.runs,
            r.bound,
            r.binds_per_s,
            r.p50,
            r.p99,
            r.peak_mib,
            r.cpu,
            per_k,
            r.apiserver_cpu,
            r.overcommitted,
            r.double_binds,
            r.events,
            last_event,
        );
    }
    let _ = out.flush();
}

async fn run_all(cluster: &Cluster, args: &Args, dir: &Path) -> Vec<Row> {
    let client = cluster.control_plane.admin_client().await;
    let ids = write_identities(cluster, dir);
    let mut nodes = 0;
    let mut run = 0;
    // Runs in order: per node count (nodes are only ever added), `repeat` rounds of its cells.
    let mut plan: Vec<usize> = Vec::new();
    for (i, (cell, _)) in args.cells.iter().enumerate() {
        if plan.iter().any(|&j| args.cells[j].0.nodes == cell.nodes) {
            continue;
        }
        let group: Vec<usize> = (i..args.cells.len()).filter(|&j| args.cells[j].0.nodes == cell.nodes).collect();
        let rounds = group.iter().map(|&j| args.cells[j].1).max().unwrap_or(1);
        for round in 0..rounds {
            plan.extend(group.iter().filter(|&&j| round < args.cells[j].1));
        }
    }
    let mut runs: Vec<Vec<Vec<Row>>> =
        args.cells.iter().map(|_| args.schedulers.iter().map(|_| Vec::new()).collect()).collect();
    for c in plan {
        let cell = args.cells[c].0;
        add_nodes(&client, nodes, cell.nodes).await;
        nodes = nodes.max(cell.nodes);
        for (i, &which) in args.schedulers.iter().enumerate() {
            run += 1;
            eprintln!(
                "run {run}: {} — {} nodes, {} pods {}, client {}/{}",
                which.name(),
                cell.nodes,
                cell.pods,
                mode_name(cell.mode),
                cell.limit.qps,
                cell.limit.burst
            );
            match run_one(run, which, cell, cluster, &client, &ids, args, dir).await {
                Ok(row) => {
                    eprintln!(
                        "  {} bound, {:.1} binds/s, p50 {:.1} s, p99 {:.1} s, {:.0} MiB, {:.1} CPU s ({:.2} per 1k \
                         binds), API server {:.1} CPU s, {} Scheduled Events, stopped in {:.1} s",
                        row.bound,
                        row.binds_per_s,
                        row.p50,
                        row.p99,
                        row.peak_mib,
                        row.cpu,
                        row.cpu_per_k(),
                        row.apiserver_cpu,
                        row.events,
                        row.stop_seconds
                    );
                    runs[c][i].push(row);
                }
                Err(e) => eprintln!("  run {run} failed: {e}"),
            }
        }
    }
    let mut rows = Vec::new();
    for cell in runs {
        rows.extend(cell.into_iter().filter_map(aggregate));
    }
    rows
}

fn main() {
    let args = parse_args();
    let dir = mlsched_tests::real::binaries::target_dir().join(format!("live-bench/{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    eprintln!("starting the control plane (the first start builds it from tests/cluster/)");
    let options = Options::default();
    let cluster = Cluster::start(options).unwrap_or_else(|e| panic!("starting the control plane: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let rows = runtime.block_on(run_all(&cluster, &args, &dir));
    print_table(&rows);
    eprintln!("scheduler configs and logs in {}", dir.display());
    drop(runtime);
    cluster.control_plane.stop();
}
