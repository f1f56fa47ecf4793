//! `mlsim autoscale`: the hybrid HPA/VPA autoscaling paper's analytic model (`model`), and a simulation of
//! the same comparison with real placements on a generated tree (`run`).
//!
//! - `model`: the paper's bandwidth formulas, table and SVGs.
//! - `load`: seeded demand curves.
//! - `cluster`: the generated tree and the schedulers placing pods on it.
//! - `workload`: a workload's pods and the controller's memory of them; what the sidecar would observe.
//! - `controller`: one period of the sidecar's own decision (`mlsched-autoscale`) and its action.
//! - `run`: the simulator and `summary.json`.
//! - `plot`: SVGs of a run.

pub mod cluster;
pub mod controller;
pub mod load;
pub mod model;
pub mod plot;
pub mod run;
pub mod workload;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use model::ModelParams;
use run::RunConfig;

#[derive(Args, Debug, Clone)]
pub struct AutoscaleArgs {
    #[command(subcommand)]
    pub command: AutoscaleCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AutoscaleCommand {
    /// The paper's analytic bandwidth model: HPA, VPA and hybrid against network tiers and requests.
    Model(ModelArgs),
    /// Simulates the four autoscaling modes on a generated tree with placements by the scheduling core.
    Run(RunArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Mc: pods running now.
    #[arg(long, default_value_t = 3.0)]
    pub mc: f64,
    /// Md: pods to add.
    #[arg(long, default_value_t = 2.0)]
    pub md: f64,
    /// BW_req: MB per request.
    #[arg(long, default_value_t = 0.01)]
    pub bw_req: f64,
    /// BW_syn: MB of state sync per request between an old and a new pod.
    #[arg(long, default_value_t = 0.05)]
    pub bw_syn: f64,
    /// R (requests/s per pod) of the sweep over tiers.
    #[arg(long, default_value_t = 100.0)]
    pub requests: f64,
    /// N (network tiers) of the sweep over requests.
    #[arg(long, default_value_t = 3)]
    pub tiers: u32,
    /// The tier sweep runs N = 1..=MAX_TIERS.
    #[arg(long, default_value_t = 6)]
    pub max_tiers: u32,
    /// The request sweep runs R = 0..=MAX_REQUESTS in 10 steps.
    #[arg(long, default_value_t = 1000.0)]
    pub max_requests: f64,
    /// Directory for model.md, model.json and the SVGs.
    #[arg(long, default_value = "out/autoscale")]
    pub out: PathBuf,
    /// Splice the table into this markdown file (between `generated:autoscale-model` markers); the
    /// SVGs are copied to `figures/` next to it.
    #[arg(long)]
    pub readme: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 64)]
    pub nodes: usize,
    #[arg(long, default_value_t = 8)]
    pub nodes_per_rack: usize,
    #[arg(long, default_value_t = 4)]
    pub racks_per_spine: usize,
    /// CPU per node, millicores.
    #[arg(long, default_value_t = 16_000)]
    pub node_cpu_milli: i64,
    /// Fraction of nodes whose background load leaves them no room to grow (0–600 m free).
    #[arg(long, default_value_t = 0.5)]
    pub full_fraction: f64,
    #[arg(long, default_value_t = 16)]
    pub workloads: usize,
    /// Simulated seconds.
    #[arg(long, default_value_t = 86_400.0)]
    pub duration: f64,
    /// Seconds for a new pod to become ready.
    #[arg(long, default_value_t = 30.0)]
    pub start_delay: f64,
    /// Seconds a recreated pod is down (eviction, start, warm-up).
    #[arg(long, default_value_t = 30.0)]
    pub restart_delay: f64,
    /// MB/s of state sync between each follower and its primary.
    #[arg(long, default_value_t = 1.0)]
    pub sync_mb_s: f64,
    /// MB of state a starting pod copies from the nearest ready replica.
    #[arg(long, default_value_t = 512.0)]
    pub state_mb: f64,
    /// Directory for summary.json, config.json, autoscale.md and the SVGs.
    #[arg(long, default_value = "out/autoscale")]
    pub out: PathBuf,
    /// Splice the table into this markdown file (between `generated:autoscale` markers); the SVGs are
    /// copied to `figures/` next to it.
    #[arg(long)]
    pub readme: Option<PathBuf>,
}

impl ModelArgs {
    pub fn params(&self) -> ModelParams {
        ModelParams {
            mc: self.mc,
            md: self.md,
            bw_req: self.bw_req,
            bw_syn: self.bw_syn,
            requests: self.requests,
            tiers: self.tiers,
            max_tiers: self.max_tiers,
            max_requests: self.max_requests,
        }
    }
}

impl RunArgs {
    pub fn config(&self) -> RunConfig {
        RunConfig {
            seed: self.seed,
            nodes: self.nodes,
            nodes_per_rack: self.nodes_per_rack,
            racks_per_spine: self.racks_per_spine,
            node_cpu_milli: self.node_cpu_milli,
            full_fraction: self.full_fraction,
            workloads: self.workloads,
            duration_s: self.duration,
            start_delay_s: self.start_delay,
            restart_delay_s: self.restart_delay,
            sync_mb_s: self.sync_mb_s,
            state_mb: self.state_mb,
            ..RunConfig::default()
        }
    }
}

pub fn run(args: &AutoscaleArgs) -> anyhow::Result<()> {
    match &args.command {
        AutoscaleCommand::Model(a) => run_model(a),
        AutoscaleCommand::Run(a) => run_sim(a),
    }
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Copies `names` from `out` to `figures/` beside `readme`, returning the links relative to the README.
fn copy_figures(out: &Path, readme: &Path, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let figures = readme.parent().unwrap_or(Path::new(".")).join("figures");
    create(&figures)?;
    names
        .iter()
        .map(|name| {
            let target = format!("autoscale-{name}");
            std::fs::copy(out.join(name), figures.join(&target))
                .with_context(|| format!("copying {name} to {}", figures.display()))?;
            Ok(format!("figures/{target}"))
        })
        .collect()
}

fn run_model(args: &ModelArgs) -> anyhow::Result<()> {
    let params = args.params();
    anyhow::ensure!(params.max_tiers >= 1 && params.tiers >= 1, "tiers must be at least 1");
    anyhow::ensure!(
        [params.mc, params.md, params.bw_req, params.bw_syn, params.requests, params.max_requests]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0),
        "model parameters must be non-negative numbers"
    );
    create(&args.out)?;
    let table = model::markdown(&params);
    std::fs::write(args.out.join("model.md"), &table)?;
    let json = serde_json::json!({
        "params": params,
        "tiers": params.tier_sweep().iter().map(|(n, b)| serde_json::json!({"tiers": n, "bandwidth": b})).collect::<Vec<_>>(),
        "requests": params.request_sweep().iter().map(|(r, b)| serde_json::json!({"requests": r, "bandwidth": b})).collect::<Vec<_>>(),
    });
    std::fs::write(args.out.join("model.json"), serde_json::to_string_pretty(&json)?)?;
    model::write_svgs(&params, &args.out)?;
    println!("{}\n", params.describe());
    print!("{table}");
    println!("\nwrote {}/{{model.md,model.json,model-tiers.svg,model-requests.svg}}", args.out.display());
    if let Some(readme) = &args.readme {
        let links = copy_figures(&args.out, readme, &["model-tiers.svg", "model-requests.svg"])?;
        let header = format!(
            "Generated by `mlsim autoscale model`: {}. Bandwidth in MB/s.\n\n![bandwidth vs tiers]({}) ![bandwidth vs requests]({})\n\n",
            params.describe(),
            links[0],
            links[1]
        );
        crate::readme::splice(readme, "autoscale-model", &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

/// The run's setting in one paragraph, with the policy's numbers read from the policy the run used.
fn describe(cfg: &RunConfig) -> String {
    let p = run::Mode::HybridInPlace.policy();
    let bounds = p.bounds_for("*");
    format!(
        "seed {}; {} nodes of {} m CPU, {} per rack, {} racks per spine, {:.0}% of nodes left with 0–600 m free by background load; {} workloads over {:.0} h (diurnal ±50% + bursts ×1.8–3.0, ±5% noise); the sidecar's decision with its defaults: target {:.0}% of the CPU request, tolerance {}, scale-down window {} s, scale-up max(+{}, ×{})/{} s, every {} s; pods {} m (vertical {}–{} m), {}–{} replicas; new pod ready after {} s, recreate down {} s; sync {} MB/s follower↔primary + {} MB state copy per start",
        cfg.seed,
        cfg.nodes,
        cfg.node_cpu_milli,
        cfg.nodes_per_rack,
        cfg.racks_per_spine,
        cfg.full_fraction * 100.0,
        cfg.workloads,
        cfg.duration_s / 3600.0,
        p.cpu_target.unwrap_or(0.0) * 100.0,
        p.tolerance,
        p.scale_down_window_s,
        p.up_limit_pods,
        p.up_limit_factor,
        mlsched_autoscale::DEFAULT_SCALE_UP_LIMIT_PERIOD_S,
        cfg.sync_period_s,
        cfg.pod_cpu_milli,
        bounds.min_cpu.unwrap_or(0),
        bounds.max_cpu.unwrap_or(0),
        p.min_replicas,
        p.max_replicas,
        cfg.start_delay_s,
        cfg.restart_delay_s,
        cfg.sync_mb_s,
        cfg.state_mb
    )
}

fn run_sim(args: &RunArgs) -> anyhow::Result<()> {
    let cfg = args.config();
    anyhow::ensure!(
        cfg.nodes > 0 && cfg.nodes_per_rack > 0 && cfg.racks_per_spine > 0,
        "cluster counts must be at least 1"
    );
    anyhow::ensure!(cfg.workloads > 0 && cfg.duration_s > 0.0, "need at least one workload and a positive duration");
    anyhow::ensure!((0.0..=1.0).contains(&cfg.full_fraction), "--full-fraction must be in 0..=1");
    let started = std::time::Instant::now();
    let runs = run::run_all(&cfg)?;
    create(&args.out)?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&run::summary_json(&runs))?)?;
    std::fs::write(args.out.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    let table = run::markdown(&runs);
    std::fs::write(args.out.join("autoscale.md"), &table)?;
    plot::timeseries_svg(&args.out.join("timeseries.svg"), &runs)?;
    plot::bandwidth_svg(&args.out.join("bandwidth.svg"), &runs)?;
    let describe = describe(&cfg);
    println!("{describe}\n");
    print!("{table}");
    println!(
        "\nwrote {}/{{summary.json,config.json,autoscale.md,timeseries.svg,bandwidth.svg}} in {:.1} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(readme) = &args.readme {
        let links = copy_figures(&args.out, readme, &["timeseries.svg", "bandwidth.svg"])?;
        let header = format!(
            "Generated by `mlsim autoscale run`: {describe}.\n\n![replicas and CPU over time]({}) ![sync bandwidth per tier]({})\n\n",
            links[0], links[1]
        );
        crate::readme::splice(readme, "autoscale", &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}
