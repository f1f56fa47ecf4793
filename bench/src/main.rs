//! `mlsim`: the offline simulator. See `mlsim --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use mlsched::plugins::policy::Policy;
use mlsim::compare::{markdown_table, run_all, write_csv};
use mlsim::plot::allocation_svg;
use mlsim::progress::DelayedProgress;
use mlsim::replay::{ReplayInput, replay};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, Source, read_nodes, read_pods};

#[derive(Parser)]
#[command(name = "mlsim", version, about = "Replays recorded cluster traces through mlsched's scheduling core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One replay of a GPU-sharing trace under one policy (the FGD paper's method).
    Replay(ReplayArgs),
    /// Every policy × seed pair: a markdown table, a CSV and an SVG of allocation against arrived workload.
    Compare(CompareArgs),
    /// The six paper policies and mlsched's on every published workload, beside the artifact's published means.
    Reproduce(ReproduceArgs),
    /// Stress variants of the default workload (more CPU-only pods, other share-size mixes), generated from
    /// it with a seed, written as pod lists, and replayed under BestFit, FGD and mlsched's two.
    Stress(StressArgs),
    /// A proven lower bound on the unallocated GPU % (LP relaxation with a dual certificate) and the best
    /// offline placement found, beside every policy's replays, per workload.
    Bound(BoundArgs),
    /// A stream whose shape mix changes halfway (one workload, then another): the fixed prior against
    /// mlsched-online's fading window and its all-history count.
    Drift(DriftArgs),
    /// A MIG cluster under a mixed-profile workload: least-allocated, most-allocated and mlsched packing.
    Mig(MigArgs),
    /// Replays real training-job traces (ITP, Philly) with gangs and network topology.
    Jobs(mlsim::jobs::JobsArgs),
    /// Hybrid HPA/VPA autoscaling: the paper's analytic model (`model`) and a simulation with real placements (`run`).
    Autoscale(mlsim::autoscale::AutoscaleArgs),
}

#[derive(Args)]
struct MigArgs {
    /// Nodes of 8 MIG-enabled A100-80GB.
    #[arg(long, default_value_t = 64)]
    nodes: usize,
    /// Profile mix as PROFILE=WEIGHT,...
    #[arg(long, default_value = mlsim::mig::DEFAULT_MIX)]
    mix: String,
    #[arg(long, default_value = "42..51", value_parser = parse_seeds)]
    seeds: Seeds,
    #[arg(long, default_value_t = mlsim::stream::PAPER_TUNE)]
    tune: f64,
    /// Directory for mig.md and summaries.json.
    #[arg(long, default_value = "out/mig")]
    out: PathBuf,
    /// Also splice the table into this markdown file (between `generated:mig` markers).
    #[arg(long)]
    readme: Option<PathBuf>,
}

#[derive(Args)]
struct StressArgs {
    /// The seed the variants are drawn with (recorded in the manifest and the table's header).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Variants to make (default: all).
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// The replay seeds.
    #[arg(long, default_value = "42..51", value_parser = parse_seeds)]
    seeds: Seeds,
    /// Directory for the pod lists (`openb_pod_list_<variant>.csv`, replayable with `mlsim reproduce
    /// --traces`), their manifest and the table.
    #[arg(long, default_value = "out/stress")]
    out: PathBuf,
    /// Also splice the manifest and the table into this markdown file (`generated:stress` markers).
    #[arg(long)]
    readme: Option<PathBuf>,
}

#[derive(Args)]
struct BoundArgs {
    /// Folder with pod lists (`openb_pod_list_<workload>.csv`: the shared trace folder, or `mlsim stress`'s
    /// output); without it only the bundled default workload.
    #[arg(long)]
    traces: Option<PathBuf>,
    /// Workloads (default: every pod list in `--traces`, the default first).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Policies replayed beside the bound, and seeds.
    #[command(flatten)]
    runs: PolicySeeds,
    /// Directory for bound.md and bounds.json (per seed).
    #[arg(long, default_value = "out/bound")]
    out: PathBuf,
    /// Also splice the table into this markdown file, between `generated:<marker>` markers.
    #[arg(long)]
    readme: Option<PathBuf>,
    #[arg(long, default_value = "bound")]
    marker: String,
}

#[derive(Args)]
struct DriftArgs {
    /// The workload of the first half: a pod list of `--traces` when given; without it `default` or a
    /// stress variant (made from the bundled default with `--variant-seed`).
    #[arg(long, default_value = "sharelarge")]
    first: String,
    /// The workload of the second half.
    #[arg(long, default_value = "sharesmall")]
    second: String,
    #[arg(long)]
    traces: Option<PathBuf>,
    /// The seed stress variants are drawn with (as `mlsim stress --seed`).
    #[arg(long, default_value_t = 1)]
    variant_seed: u64,
    #[arg(long, default_value = "42..51", value_parser = parse_seeds)]
    seeds: Seeds,
    /// Directory for drift.md.
    #[arg(long, default_value = "out/drift")]
    out: PathBuf,
    /// Also splice the table into this markdown file, between `generated:<marker>` markers.
    #[arg(long)]
    readme: Option<PathBuf>,
    #[arg(long, default_value = "drift")]
    marker: String,
}

#[derive(Args)]
struct ReproduceArgs {
    /// Folder with the openb pod lists (`openb_pod_list_<workload>.csv`); without it only the bundled
    /// default workload is replayed.
    #[arg(long)]
    traces: Option<PathBuf>,
    /// Workloads to replay (default: the bundled default, and every `openb_pod_list_<workload>.csv` in
    /// `--traces`, published by the artifact or not).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    #[arg(long, default_value = "42..51", value_parser = parse_seeds)]
    seeds: Seeds,
    /// Directory for reproduction.md.
    #[arg(long, default_value = "out/reproduce")]
    out: PathBuf,
    /// Also splice the table into this markdown file (between `generated:reproduction` markers).
    #[arg(long)]
    readme: Option<PathBuf>,
}

#[derive(Args)]
struct TraceArgs {
    /// Node list CSV (`sn,cpu_milli,memory_mib,gpu,model`); default: the bundled openb GPU nodes.
    #[arg(long)]
    nodes: Option<PathBuf>,
    /// Pod list CSV (`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec]`); default: the bundled openb default list.
    #[arg(long)]
    pods: Option<PathBuf>,
    /// Tune the stream's GPU request to this multiple of the cluster's GPU capacity (0: no tuning).
    #[arg(long, default_value_t = mlsim::stream::PAPER_TUNE)]
    tune: f64,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    trace: TraceArgs,
    #[arg(long, default_value = "fgd")]
    policy: Policy,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory for summary.json.
    #[arg(long, default_value = "out/replay")]
    out: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    runs: PolicySeeds,
    /// Directory for table.md, runs.csv, allocation.svg and summaries.json.
    #[arg(long, default_value = "out/compare")]
    out: PathBuf,
    /// Also splice the table into this markdown file (between `generated:compare-<workload>` markers).
    #[arg(long)]
    readme: Option<PathBuf>,
}

/// The policies and seeds of a comparison.
#[derive(Args)]
struct PolicySeeds {
    /// Comma-separated policies.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "random,dotprod,gpuclustering,gpupacking,bestfit,fgd,mlsched,mlsched-online"
    )]
    policies: Vec<Policy>,
    /// Seeds as `A..B` (inclusive) or a comma-separated list.
    #[arg(long, default_value = "42..51", value_parser = parse_seeds)]
    seeds: Seeds,
}

#[derive(Clone)]
struct Seeds(Vec<u64>);

fn parse_seeds(s: &str) -> Result<Seeds, String> {
    let seeds = if let Some((a, b)) = s.split_once("..") {
        let a: u64 = a.trim().parse().map_err(|e| format!("seed range start {a:?}: {e}"))?;
        let b: u64 = b.trim().parse().map_err(|e| format!("seed range end {b:?}: {e}"))?;
        if a > b {
            return Err(format!("empty seed range {s}"));
        }
        (a..=b).collect()
    } else {
        s.split(',')
            .map(|x| x.trim().parse::<u64>().map_err(|e| format!("seed {x:?}: {e}")))
            .collect::<Result<_, _>>()?
    };
    Ok(Seeds(seeds))
}

fn load(trace: &TraceArgs) -> anyhow::Result<(Vec<mlsched::core::Node>, Vec<mlsim::trace::TracePod>)> {
    let nodes = match &trace.nodes {
        Some(p) => read_nodes(&Source::File(p))?,
        None => read_nodes(&BUNDLED_NODES)?,
    };
    let pods = match &trace.pods {
        Some(p) => read_pods(&Source::File(p))?,
        None => read_pods(&BUNDLED_PODS)?,
    };
    if !trace.tune.is_finite() || trace.tune < 0.0 {
        bail!("--tune must be a non-negative number, got {}", trace.tune);
    }
    Ok((nodes, pods))
}

fn workload_name(trace: &TraceArgs) -> String {
    trace
        .pods
        .as_deref()
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().trim_start_matches("openb_pod_list_").to_string())
        .unwrap_or_else(|| "default".into())
}

fn run_replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let (nodes, pods) = load(&args.trace)?;
    let mut bar = DelayedProgress::new(0, &format!("{} seed {}", args.policy, args.seed));
    let summary = replay(
        &ReplayInput { nodes: &nodes, pods: &pods, policy: args.policy, seed: args.seed, tune: args.trace.tune },
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set(done as u64);
        },
    );
    bar.finish();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    println!(
        "{} seed {} on {} nodes / {} GPUs: {} pods arrived, {} failed; unallocated GPU at 100% arrived: {} %, fragmentation: {} %; {:.2} s ({:.0} decisions/s)",
        summary.policy,
        summary.seed,
        summary.nodes,
        summary.gpus,
        summary.pods_arrived,
        summary.pods_failed,
        fmt(summary.unallocated_gpu_pct_at_100),
        fmt(summary.frag_pct_at_100),
        summary.elapsed_seconds,
        summary.decisions_per_second
    );
    println!("wrote {}", path.display());
    Ok(())
}

fn run_compare(args: &CompareArgs) -> anyhow::Result<()> {
    let (nodes, pods) = load(&args.trace)?;
    if args.runs.policies.is_empty() || args.runs.seeds.0.is_empty() {
        bail!("nothing to compare: give at least one policy and one seed");
    }
    let summaries = run_all(&nodes, &pods, &args.runs.policies, &args.runs.seeds.0, args.trace.tune);
    let workload = workload_name(&args.trace);
    let table = markdown_table(&summaries, &args.runs.policies);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("table.md"), &table)?;
    write_csv(&args.out.join("runs.csv"), &summaries)?;
    std::fs::write(args.out.join("summaries.json"), serde_json::to_string(&summaries)?)?;
    let names: Vec<String> = args.runs.policies.iter().map(|p| p.name().to_string()).collect();
    let title = format!("{workload}: GPU allocation vs arrived workload (mean of {} seeds)", args.runs.seeds.0.len());
    allocation_svg(&args.out.join("allocation.svg"), &summaries, &names, &title)?;
    println!("workload {workload}, seeds {:?}, tune {}\n", args.runs.seeds.0, args.trace.tune);
    print!("{table}");
    println!("\nwrote {}/{{table.md,runs.csv,summaries.json,allocation.svg}}", args.out.display());
    if let Some(readme) = &args.readme {
        let seeds = &args.runs.seeds.0;
        let header = format!(
            "Generated by `mlsim compare` on workload `{workload}`, seeds {}..{}, tune {}.\n\n",
            seeds[0],
            seeds[seeds.len() - 1],
            args.trace.tune
        );
        mlsim::readme::splice(readme, &format!("compare-{workload}"), &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

fn run_mig(args: &MigArgs) -> anyhow::Result<()> {
    let mix = mlsim::mig::parse_mix(&args.mix)?;
    if args.nodes == 0 || args.seeds.0.is_empty() {
        bail!("need at least one node and one seed");
    }
    let summaries = mlsim::mig::compare(args.nodes, &mix, &args.seeds.0, args.tune);
    let table = mlsim::mig::markdown(&summaries, &mix);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("mig.md"), &table)?;
    std::fs::write(args.out.join("summaries.json"), serde_json::to_string(&summaries)?)?;
    println!(
        "{} nodes x 8 {}, mix {}, seeds {:?}, tune {}\n",
        args.nodes,
        mlsim::mig::GPU_MODEL,
        args.mix,
        args.seeds.0,
        args.tune
    );
    print!("{table}");
    if let Some(readme) = &args.readme {
        let header = format!(
            "Generated by `mlsim mig --nodes {} --mix {} --seeds {}..{}` ({} nodes x 8 {}, tune {}).\n\n",
            args.nodes,
            args.mix,
            args.seeds.0[0],
            args.seeds.0[args.seeds.0.len() - 1],
            args.nodes,
            mlsim::mig::GPU_MODEL,
            args.tune
        );
        mlsim::readme::splice(readme, "mig", &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

fn run_reproduce(args: &ReproduceArgs) -> anyhow::Result<()> {
    use mlsim::reproduce::{markdown, rows, run_workload};
    let published = mlsim::published::Published::load()?;
    let nodes = read_nodes(&BUNDLED_NODES)?;
    let mut all_rows = Vec::new();
    for (workload, pods) in workload_pods(args.traces.as_deref(), &args.workloads)? {
        let workload = &workload;
        eprintln!(
            "replaying {workload}: {} pods x {} policies x {} seeds",
            pods.len(),
            Policy::EXTENDED.len(),
            args.seeds.0.len()
        );
        let result = run_workload(workload, &nodes, &pods, &args.seeds.0);
        all_rows.extend(rows(&result, &published));
    }
    let table = markdown(&all_rows);
    let versus = mlsim::reproduce::mlsched_vs_fgd(&all_rows);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("reproduction.md"), &table)?;
    std::fs::write(args.out.join("mlsched-vs-fgd.md"), &versus)?;
    print!("{table}\n{versus}");
    if let Some(readme) = &args.readme {
        let header = format!("Generated by `mlsim reproduce`, seeds {:?}.\n\n", args.seeds.0);
        mlsim::readme::splice(readme, "reproduction", &(header.clone() + &table))?;
        mlsim::readme::splice(readme, "mlsched-vs-fgd", &(header + &versus))?;
        println!("updated {}", readme.display());
    }
    let misses = all_rows.iter().filter(|r| r.within_tolerance() == Some(false)).count();
    if misses > 0 {
        println!("{misses} of {} rows outside tolerance", all_rows.len());
    }
    Ok(())
}

/// The named workloads (default: every pod list of `traces`, or the bundled default without it), with
/// their pods read by [`named_workload`].
fn workload_pods(
    traces: Option<&Path>,
    named: &[String],
) -> anyhow::Result<Vec<(String, Vec<mlsim::trace::TracePod>)>> {
    let workloads = match (named.is_empty(), traces) {
        (false, _) => named.to_vec(),
        (true, Some(dir)) => mlsim::reproduce::shared_workloads(dir)?,
        (true, None) => vec!["default".to_string()],
    };
    // Stress variants are read from `traces` when given; otherwise drawn as `mlsim stress` does by default.
    let variant_seed = 1;
    workloads
        .into_iter()
        .map(|w| {
            let pods = named_workload(&w, traces, variant_seed)?;
            Ok((w, pods))
        })
        .collect()
}

fn run_bound(args: &BoundArgs) -> anyhow::Result<()> {
    let nodes = read_nodes(&BUNDLED_NODES)?;
    if args.runs.seeds.0.is_empty() {
        bail!("give at least one seed");
    }
    let mut rows = Vec::new();
    for (workload, pods) in workload_pods(args.traces.as_deref(), &args.workloads)? {
        eprintln!(
            "bounding {workload}: {} pods, {} policies x {} seeds",
            pods.len(),
            args.runs.policies.len(),
            args.runs.seeds.0.len()
        );
        let started = std::time::Instant::now();
        let row = mlsim::bound_table::run(&workload, &nodes, &pods, &args.runs.policies, &args.runs.seeds.0)
            .with_context(|| format!("bounding workload {workload}"))?;
        eprintln!(
            "  {workload}: LP bound {:.2} %, offline {:.2} % ({:.0} s)",
            row.lp_bound(),
            row.offline(),
            started.elapsed().as_secs_f64()
        );
        rows.push(row);
    }
    let seeds = &args.runs.seeds.0;
    let header = format!(
        "Generated by `mlsim bound`, seeds {}..{}: unallocated GPU % at 100 % arrived, mean over seeds.\n\n",
        seeds[0],
        seeds[seeds.len() - 1]
    );
    let table = header + &mlsim::bound_table::markdown(&rows);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("bound.md"), &table)?;
    let per_seed: Vec<_> = rows.iter().map(|r| (&r.workload, &r.seeds)).collect();
    std::fs::write(args.out.join("bounds.json"), serde_json::to_string_pretty(&per_seed)?)?;
    print!("{table}");
    if let Some(readme) = &args.readme {
        mlsim::readme::splice(readme, &args.marker, &table)?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

/// A workload by name: the pod list `openb_pod_list_<name>.csv` in `traces` when given; without it the
/// bundled default, or a stress variant made from it with `variant_seed`.
fn named_workload(name: &str, traces: Option<&Path>, variant_seed: u64) -> anyhow::Result<Vec<mlsim::trace::TracePod>> {
    if let Some(dir) = traces {
        return Ok(read_pods(&Source::File(&mlsim::reproduce::workload_file(dir, name)))?);
    }
    if name == "default" {
        return Ok(read_pods(&BUNDLED_PODS)?);
    }
    let Some(variant) = mlsim::stress::VARIANTS.iter().find(|v| v.name == name) else {
        bail!("workload {name} is neither the default nor a stress variant; give --traces");
    };
    let Source::Bundled { bytes, .. } = BUNDLED_PODS else { unreachable!("the default list is bundled") };
    let (csv, _) = mlsim::stress::generate(bytes, variant, variant_seed)?;
    Ok(read_pods(&Source::Bundled { name, bytes: &csv })?)
}

fn run_drift(args: &DriftArgs) -> anyhow::Result<()> {
    let nodes = read_nodes(&BUNDLED_NODES)?;
    let first = named_workload(&args.first, args.traces.as_deref(), args.variant_seed)?;
    let second = named_workload(&args.second, args.traces.as_deref(), args.variant_seed)?;
    if args.seeds.0.is_empty() {
        bail!("give at least one seed");
    }
    let learners = mlsim::drift::default_learners();
    let runs = mlsim::drift::run(&nodes, &first, &second, &learners, &args.seeds.0);
    let seeds = &args.seeds.0;
    let header = format!(
        "Generated by `mlsim drift --first {} --second {}` (stress variants drawn with seed {}), seeds {}..{}: mean ± sd; mix distance is the total variation distance between the learned typical shapes and the second workload's (0 = the same mix, 1 = disjoint).\n\n",
        args.first,
        args.second,
        args.variant_seed,
        seeds[0],
        seeds[seeds.len() - 1]
    );
    let table = header + &mlsim::drift::markdown(&runs, &learners);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("drift.md"), &table)?;
    print!("{table}");
    if let Some(readme) = &args.readme {
        mlsim::readme::splice(readme, &args.marker, &table)?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

fn run_stress(args: &StressArgs) -> anyhow::Result<()> {
    use mlsim::stress::{VARIANTS, generate, manifest};
    let nodes = read_nodes(&BUNDLED_NODES)?;
    let Source::Bundled { bytes: default_csv, .. } = BUNDLED_PODS else { unreachable!("the default list is bundled") };
    let variants: Vec<_> = if args.variants.is_empty() {
        VARIANTS.to_vec()
    } else {
        let known: Vec<_> = VARIANTS.iter().map(|v| v.name).collect();
        args.variants
            .iter()
            .map(|name| {
                VARIANTS
                    .iter()
                    .find(|v| v.name == name)
                    .copied()
                    .with_context(|| format!("unknown variant {name:?}; known: {}", known.join(", ")))
            })
            .collect::<anyhow::Result<_>>()?
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut made = Vec::new();
    let mut rows = Vec::new();
    for variant in &variants {
        let (csv, counts) = generate(default_csv, variant, args.seed)?;
        let file = mlsim::reproduce::workload_file(&args.out, variant.name);
        std::fs::write(&file, &csv).with_context(|| format!("writing {}", file.display()))?;
        made.push((*variant, counts));
        let pods = read_pods(&Source::File(&file))?;
        eprintln!(
            "replaying {}: {} pods x {} policies x {} seeds",
            variant.name,
            pods.len(),
            mlsim::stress_table::POLICIES.len(),
            args.seeds.0.len()
        );
        rows.push(mlsim::stress_table::run(variant.name, &nodes, &pods, &args.seeds.0));
    }
    let cluster_ratio = mlsched::plugins::cpu_feed::cluster_cpu_per_gpu_milli(&nodes);
    let manifest = manifest(args.seed, &made, mlsim::stress::default_counts(default_csv)?, cluster_ratio);
    let header = format!(
        "Generated by `mlsim stress --seed {}`, replay seeds {:?}: unallocated GPU % at 100 % arrived (mean ± sd).\n\n",
        args.seed, args.seeds.0
    );
    let table = header + &mlsim::stress_table::markdown(&rows);
    std::fs::write(args.out.join("variants.md"), &manifest)?;
    std::fs::write(args.out.join("stress.md"), &table)?;
    print!("{manifest}\n{table}");
    if let Some(readme) = &args.readme {
        mlsim::readme::splice(readme, "stress-variants", &manifest)?;
        mlsim::readme::splice(readme, "stress", &table)?;
        println!("updated {}", readme.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Replay(args) => run_replay(args),
        Command::Compare(args) => run_compare(args),
        Command::Reproduce(args) => run_reproduce(args),
        Command::Stress(args) => run_stress(args),
        Command::Bound(args) => run_bound(args),
        Command::Drift(args) => run_drift(args),
        Command::Mig(args) => run_mig(args),
        Command::Jobs(args) => mlsim::jobs::run(args),
        Command::Autoscale(args) => mlsim::autoscale::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mlsim: {err:#}");
            ExitCode::FAILURE
        }
    }
}
