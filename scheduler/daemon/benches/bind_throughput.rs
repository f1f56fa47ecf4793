//! Bind throughput of the real `mlsched` binary against the in-process API double (not a timed test).
//!
//! ```sh
//! cargo bench -p mlsched-scheduler --bench bind_throughput -- \
//!     [--pods 10000] [--nodes 1000] [--qps 50] [--burst 100] [--timeout 1200]
//! ```
//!
//! The double (this process) serves `--nodes` nodes of 8 GPUs (10 per rack, 10 racks per spine). The scheduler
//! runs as a child process with `KUBECONFIG` pointing at the double, so its memory is measured alone. Once its
//! watches are open, `--pods` pending pods are created: about 10% gang members (PodGroups of 8 x 2 GPUs and
//! 4 x 1 GPU), 30% whole-GPU pods (1 GPU, every tenth 2), 60% GPU shares (`mlsched.io/gpu-milli` 100..500);
//! about 80% of the GPUs in all. Throughput is pods bound per second of wall time from the first pod created to the last
//! binding served; peak memory is the scheduler's `VmHWM`. CPU seconds of the scheduler and of this process
//! (the double plus the pod creation and polling) show which side is the bottleneck. Prints a markdown table.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mlsched_tests::cluster::{GpuClusterSpec, pending_pod, pod_group, seed_gpu_cluster};
use mlsched_tests::{ApiServer, RequestMatch, Verb};
use serde_json::json;

const NS: &str = "bench";

struct Args {
    pods: usize,
    nodes: u32,
    qps: f64,
    burst: u32,
    timeout: Duration,
}

fn parse_args() -> Args {
    let mut a = Args { pods: 10_000, nodes: 1000, qps: 50.0, burst: 100, timeout: Duration::from_secs(1200) };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--pods" => a.pods = value().parse().expect("--pods"),
            "--nodes" => a.nodes = value().parse().expect("--nodes"),
            "--qps" => a.qps = value().parse().expect("--qps"),
            "--burst" => a.burst = value().parse().expect("--burst"),
            "--timeout" => a.timeout = Duration::from_secs(value().parse().expect("--timeout")),
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}; see the header of benches/bind_throughput.rs"),
        }
    }
    assert!(a.nodes.is_multiple_of(10), "--nodes must be a multiple of 10");
    a
}

/// `(utime + stime)` in seconds from `/proc/<pid>/stat` (clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file; `after_comm` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/<pid>/status` value in MiB (`VmHWM`, `VmRSS`).
fn status_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim_start_matches(':').split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The workload, in creation order: the PodGroups, and the pods (a gang's members together).
fn workload(n: usize) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut groups = Vec::new();
    let mut pods = Vec::new();
    let (mut gang, mut whole, mut shared) = (0usize, 0usize, 0usize);
    let mut slot = 0usize;
    while pods.len() < n {
        match slot % 50 {
            // One gang per 50 slots: 8 members x 2 GPUs, then twice 4 members x 1 GPU.
            0 if pods.len() + 8 <= n => {
                let (members, gpus) = if gang.is_multiple_of(3) { (8, 2) } else { (4, 1) };
                let name = format!("gang-{gang}");
                groups.push(pod_group(NS, &name, members, None));
                for i in 0..members {
                    pods.push(pending_pod(NS, &format!("{name}-{i}"), gpus, "mlsched", Some(&name)));
                }
                gang += 1;
            }
            s if s % 3 == 0 => {
                pods.push(whole_pod(whole));
                whole += 1;
            }
            _ => {
                let milli = [250, 500, 250, 100][shared % 4];
                let mut p = pending_pod(NS, &format!("share-{shared}"), 0, "mlsched", None);
                p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "1", "memory": "4Gi"}});
                p["metadata"]["annotations"] = json!({"mlsched.io/gpu-milli": milli.to_string()});
                pods.push(p);
                shared += 1;
            }
        }
        slot += 1;
    }
    (groups, pods)
}

/// `GET /metrics` of the scheduler (HTTP/1.0, read to the end).
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return String::new() };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn whole_pod(i: usize) -> serde_json::Value {
    let gpus = if i % 10 == 9 { 2 } else { 1 };
    let mut p = pending_pod(NS, &format!("whole-{i}"), gpus, "mlsched", None);
    p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("2");
    p["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("16Gi");
    p
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let server = ApiServer::builder().history_limit(200_000).serve().await.expect("API double");
    let spec =
        GpuClusterSpec { spines: args.nodes / 100, racks_per_spine: 10, nodes_per_rack: 10, ..Default::default() };
    let spec =
        if args.nodes < 100 { GpuClusterSpec { spines: 1, racks_per_spine: args.nodes / 10, ..spec } } else { spec };
    let nodes = seed_gpu_cluster(server.state(), &spec).expect("seed nodes");
    let (groups, pods) = workload(args.pods);
    let gpu_demand: f64 = pods
        .iter()
        .map(|p| {
            let whole = p.pointer("/spec/containers/0/resources/requests/nvidia.com~1gpu");
            match (whole.and_then(|g| g.as_str()), p.pointer("/metadata/annotations/mlsched.io~1gpu-milli")) {
                (Some(g), _) => g.parse::<f64>().unwrap_or(0.0),
                (None, Some(m)) => m.as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0) / 1000.0,
                _ => 0.0,
            }
        })
        .sum();

    let dir = std::env::temp_dir().join(format!("mlsched-bind-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config.yaml");
    // A free port for the scheduler's /metrics (scraped at the end: time spent in scheduling passes and binds).
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    std::fs::write(
        &config,
        format!(
            "client: {{qps: {}, burst: {}}}\nlistenAddress: {metrics_addr}\nleaderElection: {{enabled: false}}\n",
            args.qps, args.burst
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("mlsched.log")).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlsched"))
        .arg("--config")
        .arg(&config)
        .env("KUBECONFIG", server.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start mlsched");
    let pid = child.id();

    // Ready: the three watches (nodes, pods, podgroups) are open, so the initial lists are done.
    let watch = |r: &str| server.faults().count(&RequestMatch::new(Verb::Watch, r), None);
    let started = Instant::now();
    while watch("nodes") == 0 || watch("pods") == 0 || watch("podgroups") == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the scheduler did not start; see {}", dir.display());
        assert!(child.try_wait().expect("child").is_none(), "mlsched exited; see {}", dir.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_mib = status_mib(pid, "VmRSS");
    let (cpu_sched0, cpu_self0) = (cpu_seconds(&pid.to_string()), cpu_seconds("self"));

    let t0 = Instant::now();
    let pod_kind = server.state().kind("", "pods").unwrap();
    let group_kind = server.state().kind("scheduling.x-k8s.io", "podgroups").unwrap();
    for g in groups {
        server.state().create_value(&group_kind, NS, g).expect("PodGroup");
    }
    let total = pods.len();
    for p in pods {
        server.state().create_value(&pod_kind, NS, p).expect("pod");
    }
    let created = t0.elapsed();
    let mut last_count = 0;
    let mut last_change = t0.elapsed();
    loop {
        let n = server.state().bindings().len();
        if n != last_count {
            last_count = n;
            last_change = t0.elapsed();
        }
        if n >= total || t0.elapsed() > args.timeout {
            break;
        }
        assert!(child.try_wait().expect("child").is_none(), "mlsched exited; see {}", dir.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = last_change;
    let peak_mib = status_mib(pid, "VmHWM");
    let metrics = scrape(metrics_addr);
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let passes = metric("scheduler_scheduling_attempt_duration_seconds_count");
    let pass_seconds = metric("scheduler_scheduling_attempt_duration_seconds_sum");
    let bind_seconds = metric("scheduler_binding_duration_seconds_sum");
    let (cpu_sched, cpu_self) = (cpu_seconds(&pid.to_string()) - cpu_sched0, cpu_seconds("self") - cpu_self0);
    let _ = child.kill();
    let _ = child.wait();
    let requests = server.faults().requests();
    let binds = requests.iter().filter(|r| r.info.subresource == "binding").count();
    let writes = requests.iter().filter(|r| !matches!(r.info.verb, Some(Verb::Get | Verb::List | Verb::Watch))).count();

    eprintln!(
        "scheduler: {passes} scheduling passes taking {pass_seconds:.1} s in all (the decision loop is one task); \
         binding POSTs took {bind_seconds:.1} s summed over their tasks"
    );
    let gpus = nodes.len() as f64 * f64::from(spec.gpus_per_node);
    eprintln!(
        "{} nodes, {} pods ({:.0}% of {} GPUs requested), pods created in {:.2} s, scheduler idle RSS {:.1} MiB; \
         {} binding POSTs, {} API writes in all; log in {}",
        nodes.len(),
        total,
        100.0 * gpu_demand / gpus,
        gpus,
        created.as_secs_f64(),
        idle_mib,
        binds,
        writes,
        dir.display()
    );
    println!(
        "| nodes | pods | bound | client qps/burst | wall s | pods/s | scheduler peak MiB (VmHWM) | scheduler CPU s | double+driver CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {}/{} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} |",
        nodes.len(),
        total,
        last_count,
        args.qps,
        args.burst,
        wall.as_secs_f64(),
        last_count as f64 / wall.as_secs_f64().max(1e-9),
        peak_mib,
        cpu_sched,
        cpu_self
    );
    let _ = std::io::stdout().flush();
    if last_count < total {
        eprintln!("warning: only {last_count} of {total} pods bound before the timeout");
    }
    drop(server);
}
