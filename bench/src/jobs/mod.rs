//! `mlsim jobs`: replays real training-job traces (Microsoft ITP 2021, Microsoft Philly via Pollux) with
//! gangs and network topology, and compares three policies: `mlsched` (gang + topology), `gang` (gang,
//! topology-blind) and `nogang` (pod by pod, as the default scheduler).
//!
//! - `trace`: the readers (format told by the header; errors name file, line and column).
//! - `cluster`: the generated fat tree and the default cluster size for a trace.
//! - `slowdown`: how much longer a spread gang runs.
//! - `engine`: the event loop.
//! - `summary`: `summary.json` and the comparison table.
//! - `sweep`, `cause`, `preemption`: the generated tables of bench/README.

pub mod cause;
pub mod cluster;
pub mod engine;
pub mod preemption;
pub mod slowdown;
pub mod summary;
pub mod sweep;
pub mod trace;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use rayon::prelude::*;

pub use cluster::ClusterSpec;
pub use engine::{EngineConfig, Hints, JobPolicy, PriorityMix, simulate, simulate_with_priorities};
pub use slowdown::SlowdownModel;
pub use summary::{JobsSummary, markdown_table};
pub use trace::{Job, read_jobs};

#[derive(Args, Debug, Clone)]
pub struct JobsArgs {
    /// Job trace: ITP `clusterNN.csv` or Philly `philly_jobs.csv.gz` (format told by the header).
    #[arg(long, required_unless_present_any = ["compare", "sweep", "cause", "preemption"])]
    pub trace: Option<PathBuf>,
    /// `NODES x GPUS x NODES_PER_RACK x RACKS_PER_SPINE`, e.g. 64x8x8x4. Default: sized from the trace
    /// (offered GPU demand / 0.7, at least twice the largest gang, whole racks of 8 nodes, 4 racks per spine).
    #[arg(long)]
    pub cluster: Option<ClusterSpec>,
    #[arg(long, default_value = "mlsched")]
    pub policy: JobPolicy,
    /// Directory for summary.json (and table.md / summaries.json with --compare).
    #[arg(long, default_value = "out/jobs")]
    pub out: PathBuf,
    /// Target load of the cluster sized from the trace (offered GPU demand / GPU capacity); ignored with
    /// `--cluster`.
    #[arg(long, default_value_t = cluster::DEFAULT_TARGET_LOAD)]
    pub load: f64,
    /// Philly: replay only this virtual cluster (the `cluster` column), on a cluster sized for it.
    #[arg(long)]
    pub vc: Option<String>,
    /// Replay only the first N jobs (by submission time).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Run all three policies over every shared ITP cluster and the Philly file under --traces-dir.
    #[arg(long)]
    pub compare: bool,
    /// mlsched against gang over every shared trace (each Philly VC too) × --loads × --alpha-racks ×
    /// --alpha-spines.
    #[arg(long, conflicts_with = "compare")]
    pub sweep: bool,
    /// --sweep: the target loads.
    #[arg(long, value_delimiter = ',', default_values_t = [0.7, 0.8, 0.9, 1.0])]
    pub loads: Vec<f64>,
    /// --sweep: the α_rack values.
    #[arg(long, value_delimiter = ',', default_values_t = [0.1, 0.3, 0.5])]
    pub alpha_racks: Vec<f64>,
    /// --sweep: the α_spine values (each with every α_rack).
    #[arg(long, value_delimiter = ',', default_values_t = [0.2, 0.6, 1.0])]
    pub alpha_spines: Vec<f64>,
    /// Folder holding `microsoft-itp-2021/` and `philly-pollux/` (for --compare).
    #[arg(long, default_value = "../shared/traces")]
    pub traces_dir: PathBuf,
    /// With --compare: splice the table into this markdown file (between `generated:jobs` markers).
    #[arg(long)]
    pub readme: Option<PathBuf>,
    /// Slowdown of a gang spread over racks of one spine: duration × (1 + α).
    #[arg(long, default_value_t = slowdown::DEFAULT_ALPHA_RACK)]
    pub alpha_rack: f64,
    /// Slowdown of a gang spread over spines: duration × (1 + α).
    #[arg(long, default_value_t = slowdown::DEFAULT_ALPHA_SPINE)]
    pub alpha_spine: f64,
    /// How many of the oldest waiting jobs each scheduling pass considers (backfill lookahead).
    #[arg(long, default_value_t = engine::DEFAULT_WINDOW)]
    pub window: usize,
    /// nogang: seconds a partially placed job holds its pods before they are released.
    #[arg(long, default_value_t = engine::DEFAULT_PARTIAL_TIMEOUT_SECONDS)]
    pub partial_timeout: f64,
    /// mlsched/gang: a gang skipped this many passes reserves the domain it waits for (GangQueue aging).
    #[arg(long, default_value_t = 3)]
    pub reserve_after_skips: u32,
    /// mlsched/gang: what the queue knows about run times (backfill into reservations).
    #[arg(long, value_enum, default_value_t = Hints::Declared)]
    pub hints: Hints,
    /// mlsched: a gang waits for a rack only when that saves it at least this many seconds over starting
    /// spread now (`QueueConfig::min_locality_gain`).
    #[arg(long, default_value_t = mlsched::gang::QueueConfig::default().min_locality_gain.as_secs())]
    pub min_locality_gain: u64,
    /// Print the cause table (per-size waits and runs, fragmentation) for the traces where the rule
    /// matters, instead of a replay.
    #[arg(long, conflicts_with_all = ["compare", "sweep"])]
    pub cause: bool,
    /// Share of the jobs that are high priority (drawn with --priority-seed); the rest have priority 0.
    #[arg(long, default_value_t = PriorityMix::default().high_share)]
    pub high_priority_share: f64,
    /// Seed of the draw of high-priority jobs.
    #[arg(long, default_value_t = PriorityMix::default().seed)]
    pub priority_seed: u64,
    /// mlsched/gang: a job that fits nowhere evicts lower-priority jobs, whole.
    #[arg(long)]
    pub preempt: bool,
    /// Print the preemption table (mlsched with and without preemption over every shared trace, with
    /// --high-priority-share, 0.2 if not given) instead of a replay.
    #[arg(long, conflicts_with_all = ["compare", "sweep", "cause"])]
    pub preemption: bool,
}

impl Default for JobsArgs {
    /// The command line's defaults, from the one place they are written (the `arg` attributes above).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: JobsArgs,
        }
        // Some mode is required on the command line; `--cause` is then switched off again.
        let mut args = <Command as clap::Parser>::parse_from(["mlsim-jobs", "--cause"]).args;
        args.cause = false;
        args
    }
}

/// The ITP clusters in the shared trace folder.
pub const ITP_CLUSTERS: [&str; 7] = ["01", "02", "04", "06", "08", "09", "10"];

/// Every shared trace under `dir`: (name, path).
pub fn shared_traces(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut traces: Vec<(String, PathBuf)> = ITP_CLUSTERS
        .iter()
        .map(|c| (format!("itp-{c}"), dir.join(format!("microsoft-itp-2021/cluster{c}.csv"))))
        .collect();
    traces.push(("philly".into(), dir.join("philly-pollux/philly_jobs.csv.gz")));
    traces
}

/// Reads a trace and keeps its first `limit` jobs.
pub fn load(path: &Path, limit: Option<usize>) -> anyhow::Result<Vec<Job>> {
    load_vc(path, None, limit)
}

/// Reads a trace, keeps one Philly virtual cluster if `vc` names one, then its first `limit` jobs.
pub fn load_vc(path: &Path, vc: Option<&str>, limit: Option<usize>) -> anyhow::Result<Vec<Job>> {
    let (_, mut jobs) = read_jobs(path)?;
    if let Some(vc) = vc {
        jobs = trace::only_vc(&jobs, vc);
        if jobs.is_empty() {
            bail!("{}: no jobs of virtual cluster {vc:?}", path.display());
        }
    }
    if let Some(n) = limit {
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        jobs.truncate(n);
    }
    Ok(jobs)
}

/// One replay: the config for `jobs` (cluster given or sized from them), run and summarized.
pub fn run_one(name: &str, jobs: &[Job], policy: JobPolicy, args: &JobsArgs) -> JobsSummary {
    let config = config_for(jobs, policy, args);
    let started = Instant::now();
    let result = simulate(jobs, &config);
    summary::summarize(name, jobs, &config, &result, started.elapsed().as_secs_f64())
}

pub fn config_for(jobs: &[Job], policy: JobPolicy, args: &JobsArgs) -> EngineConfig {
    EngineConfig {
        policy,
        cluster: args.cluster.unwrap_or_else(|| ClusterSpec::sized_for(jobs, args.load)),
        slowdown: SlowdownModel { alpha_rack: args.alpha_rack, alpha_spine: args.alpha_spine },
        window: args.window,
        partial_timeout: args.partial_timeout,
        reserve_after_skips: args.reserve_after_skips,
        hints: args.hints,
        min_locality_gain: std::time::Duration::from_secs(args.min_locality_gain),
        priorities: PriorityMix { high_share: args.high_priority_share, seed: args.priority_seed },
        preemption: args.preempt,
    }
}

fn validate(args: &JobsArgs) -> anyhow::Result<()> {
    SlowdownModel { alpha_rack: args.alpha_rack, alpha_spine: args.alpha_spine }
        .validate()
        .map_err(anyhow::Error::msg)?;
    for load in std::iter::once(&args.load).chain(&args.loads) {
        if !(load.is_finite() && *load > 0.0 && *load <= 1.0) {
            bail!("a load must be in (0, 1], not {load}");
        }
    }
    for &alpha_rack in &args.alpha_racks {
        for &alpha_spine in &args.alpha_spines {
            SlowdownModel { alpha_rack, alpha_spine }.validate().map_err(anyhow::Error::msg)?;
        }
    }
    if !(0.0..=1.0).contains(&args.high_priority_share) {
        bail!("--high-priority-share must be in [0, 1], not {}", args.high_priority_share);
    }
    if args.window == 0 {
        bail!("--window must be at least 1");
    }
    if !(args.partial_timeout.is_finite() && args.partial_timeout > 0.0) {
        bail!("--partial-timeout must be a positive number of seconds");
    }
    Ok(())
}

/// `mlsim jobs`.
pub fn run(args: &JobsArgs) -> anyhow::Result<()> {
    validate(args)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    if args.compare {
        return compare(args);
    }
    if args.sweep {
        return run_sweep(args);
    }
    if args.cause {
        return cause::run(args);
    }
    if args.preemption {
        return preemption::run(args);
    }
    let path = args.trace.as_deref().expect("clap requires --trace without --compare");
    let jobs = load_vc(path, args.vc.as_deref(), args.limit)?;
    let mut name = path.file_name().map_or("trace".into(), |n| n.to_string_lossy().to_string());
    if let Some(vc) = &args.vc {
        name = format!("{name}:{vc}");
    }
    let summary = run_one(&name, &jobs, args.policy, args);
    let out = args.out.join("summary.json");
    std::fs::write(&out, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", out.display()))?;
    print!("{}", markdown_table(std::slice::from_ref(&summary)));
    println!("wrote {}", out.display());
    Ok(())
}

fn compare(args: &JobsArgs) -> anyhow::Result<()> {
    let traces = shared_traces(&args.traces_dir);
    let mut loaded = Vec::new();
    for (name, path) in &traces {
        if !path.exists() {
            bail!("{} not found (give --traces-dir)", path.display());
        }
        loaded.push((name.clone(), load(path, args.limit)?));
    }
    let runs: Vec<(usize, JobPolicy)> =
        (0..loaded.len()).flat_map(|t| JobPolicy::ALL.into_iter().map(move |p| (t, p))).collect();
    let started = Instant::now();
    let summaries: Vec<JobsSummary> = runs
        .par_iter()
        .map(|&(t, policy)| {
            let (name, jobs) = &loaded[t];
            let s = run_one(name, jobs, policy, args);
            eprintln!("{name} {policy}: {:.1} s", s.elapsed_seconds);
            s
        })
        .collect();
    let table = markdown_table(&summaries);
    std::fs::write(args.out.join("table.md"), &table)?;
    std::fs::write(args.out.join("summaries.json"), serde_json::to_string_pretty(&summaries)?)?;
    print!("{table}");
    println!(
        "\n{} replays in {:.1} s; wrote {}/{{table.md,summaries.json}}",
        runs.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    if let Some(readme) = &args.readme {
        let limit = args.limit.map_or(String::new(), |n| format!(", first {n} jobs per trace"));
        let header = format!(
            "Generated by `mlsim jobs --compare`{limit}: slowdown α_rack {}, α_spine {}; run-time hints {}; backfill \
             window {} jobs; nogang partial-gang timeout {} s. Cluster per trace unless `--cluster`: offered GPU demand / 0.7, \
             ≥ 2 × largest gang, whole racks (8 nodes × 8 GPUs), 4 racks per spine. Times in hours; \
             \"gang spread hops\" = mean pairwise switch hops of multi-node jobs on the real fat tree.\n\n",
            args.alpha_rack, args.alpha_spine, args.hints, args.window, args.partial_timeout
        );
        crate::readme::splice(readme, "jobs", &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

fn run_sweep(args: &JobsArgs) -> anyhow::Result<()> {
    let traces = sweep::sweep_traces(&args.traces_dir, args.limit)?;
    let grid = sweep::SweepGrid {
        loads: args.loads.clone(),
        alphas: args.alpha_racks.iter().flat_map(|&r| args.alpha_spines.iter().map(move |&s| (r, s))).collect(),
    };
    let started = Instant::now();
    let cells = sweep::sweep(&traces, &grid, args);
    let table = sweep::sweep_table(&cells);
    let verdict = sweep::sweep_verdict(&cells);
    std::fs::write(args.out.join("sweep.md"), format!("{verdict}\n\n{table}"))?;
    std::fs::write(args.out.join("sweep.json"), serde_json::to_string_pretty(&cells)?)?;
    print!("{table}");
    println!("\n{verdict}");
    println!(
        "{} cells ({} replays) in {:.1} s; wrote {}/{{sweep.md,sweep.json}}",
        cells.len(),
        2 * cells.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    if let Some(readme) = &args.readme {
        let limit = args.limit.map_or(String::new(), |n| format!(", first {n} jobs per trace"));
        let header = format!(
            "Generated by `mlsim jobs --sweep`{limit}: run-time hints {}; backfill window {} jobs; a gang skipped {} \
             passes reserves. Cluster per trace and load: offered GPU demand / load, ≥ 2 × largest gang, whole \
             racks (8 nodes × 8 GPUs), 4 racks per spine. Each Philly VC on its own cluster, then Philly whole.\n\n\
             {verdict}\n\n",
            args.hints, args.window, args.reserve_after_skips
        );
        crate::readme::splice(readme, "jobs-sweep", &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_args_are_the_command_lines() {
        let args = JobsArgs::default();
        assert!(!args.cause && !args.compare && !args.sweep && args.trace.is_none());
        assert_eq!((args.hints, args.load, args.window), (Hints::Declared, cluster::DEFAULT_TARGET_LOAD, 64));
        assert_eq!(args.min_locality_gain, 600);
        assert_eq!(args.loads, [0.7, 0.8, 0.9, 1.0]);
    }
}
