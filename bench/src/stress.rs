//! Stress variants of the openb default pod list, made the way the trace's own variants were made: by
//! resampling the default list's pods of one kind. `cpu200` is the default's GPU pods with more CPU-only
//! pods; `gpushare100` is the default's CPU-only pods with every GPU pod a sharing one. The variants here
//! push both further, to where the GPU nodes' CPU runs out before their GPUs, and to share-size mixes
//! the default does not have.
//!
//! Every variant is a function of the default list, the variant and a seed, so a table over them can be
//! regenerated and checked by anyone with the bundled trace.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

/// Which GPU pods a variant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuPods {
    /// The default's GPU pods, unchanged.
    Default,
    /// As many GPU pods as the default has, every one drawn (with replacement) from the default's sharing
    /// pods (one GPU, less than 1000 milli) whose share is within `min_milli..=max_milli`.
    Sharing { min_milli: u32, max_milli: u32 },
}

#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub name: &'static str,
    /// CPU-only pods as a multiple of the default's: its own, plus `cpu_only_factor - 1` times as many
    /// drawn from them with replacement.
    pub cpu_only_factor: u32,
    pub gpu_pods: GpuPods,
}

const SMALL_SHARES: GpuPods = GpuPods::Sharing { min_milli: 1, max_milli: 500 };
const LARGE_SHARES: GpuPods = GpuPods::Sharing { min_milli: 501, max_milli: 999 };

pub const VARIANTS: [Variant; 6] = [
    Variant { name: "cpux2", cpu_only_factor: 2, gpu_pods: GpuPods::Default },
    Variant { name: "cpux3", cpu_only_factor: 3, gpu_pods: GpuPods::Default },
    Variant { name: "cpux4", cpu_only_factor: 4, gpu_pods: GpuPods::Default },
    Variant { name: "sharesmall", cpu_only_factor: 1, gpu_pods: SMALL_SHARES },
    Variant { name: "sharelarge", cpu_only_factor: 1, gpu_pods: LARGE_SHARES },
    Variant { name: "sharesmall-cpux2", cpu_only_factor: 2, gpu_pods: SMALL_SHARES },
];

impl Variant {
    pub fn describe(&self) -> String {
        let gpu = match self.gpu_pods {
            GpuPods::Default => "the default's GPU pods".to_string(),
            GpuPods::Sharing { min_milli, max_milli } => {
                format!("every GPU pod a sharing pod of {min_milli}..{max_milli} milli, drawn from the default's")
            }
        };
        format!("{gpu}; {}x the default's CPU-only pods", self.cpu_only_factor)
    }

    /// The variant's RNG seed for the generation seed `seed`: one stream per variant, so adding a variant
    /// does not change the others.
    fn stream_seed(&self, seed: u64) -> u64 {
        self.name.bytes().fold(seed, |h, b| h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(b)))
    }
}

/// What a generated list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub pods: usize,
    pub cpu_only: usize,
    pub sharing: usize,
    pub whole_gpu: usize,
    /// CPU and GPU milli the whole list asks: above the cluster's own ratio, CPU runs out first.
    pub cpu_milli: u64,
    pub gpu_milli: u64,
}

/// The variant's pod list (CSV with the default's header), from the default list `default_csv`.
/// Pods are renamed `openb-pod-NNNN` in order, as the trace's own lists are.
pub fn generate(default_csv: &[u8], variant: &Variant, seed: u64) -> anyhow::Result<(Vec<u8>, Counts)> {
    let mut reader = csv::Reader::from_reader(default_csv);
    let header = reader.headers().context("reading the default list's header")?.clone();
    let column = |name: &str| header.iter().position(|h| h == name).with_context(|| format!("no column {name}"));
    let name_col = column("name")?;
    let (cpu_col, num_gpu_col, gpu_milli_col) = (column("cpu_milli")?, column("num_gpu")?, column("gpu_milli")?);
    let mut cpu_only = Vec::new();
    let mut gpu = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("default list, row {}", line + 2))?;
        let number = |col: usize| -> anyhow::Result<u64> {
            let text = record.get(col).unwrap_or("");
            text.trim().parse().with_context(|| format!("default list, row {}: {text:?} is not a count", line + 2))
        };
        let (cpu_milli, num_gpu, gpu_milli) = (number(cpu_col)?, number(num_gpu_col)?, number(gpu_milli_col)?);
        let row = Row {
            sharing: num_gpu == 1 && gpu_milli < 1000,
            gpu_milli,
            cpu_milli,
            gpu_total: num_gpu * gpu_milli,
            record,
        };
        if num_gpu == 0 { cpu_only.push(row) } else { gpu.push(row) }
    }
    if cpu_only.is_empty() || gpu.is_empty() {
        bail!("the default list needs CPU-only and GPU pods to resample");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(variant.stream_seed(seed));
    let mut out: Vec<&Row> = Vec::new();
    match variant.gpu_pods {
        GpuPods::Default => out.extend(&gpu),
        GpuPods::Sharing { min_milli, max_milli } => {
            let pool: Vec<&Row> = gpu
                .iter()
                .filter(|r| r.sharing && (u64::from(min_milli)..=u64::from(max_milli)).contains(&r.gpu_milli))
                .collect();
            if pool.is_empty() {
                bail!("{}: the default list has no sharing pod of {min_milli}..{max_milli} milli", variant.name);
            }
            out.extend((0..gpu.len()).map(|_| pool[rng.random_range(0..pool.len())]));
        }
    }
    out.extend(&cpu_only);
    let extra = cpu_only.len() * (variant.cpu_only_factor.max(1) as usize - 1);
    out.extend((0..extra).map(|_| &cpu_only[rng.random_range(0..cpu_only.len())]));

    let cpu_only_count = cpu_only.len() + extra;
    let sharing = out.iter().filter(|r| r.sharing).count();
    let counts = Counts {
        pods: out.len(),
        cpu_only: cpu_only_count,
        sharing,
        whole_gpu: out.len() - cpu_only_count - sharing,
        cpu_milli: out.iter().map(|r| r.cpu_milli).sum(),
        gpu_milli: out.iter().map(|r| r.gpu_total).sum(),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header)?;
    let width = out.len().to_string().len().max(4);
    for (i, row) in out.iter().enumerate() {
        let name = format!("openb-pod-{i:0width$}");
        writer
            .write_record(row.record.iter().enumerate().map(|(c, f)| if c == name_col { name.as_str() } else { f }))?;
    }
    Ok((writer.into_inner().context("finishing the CSV")?, counts))
}

/// A row of the default list, with the numbers the generator reads from it parsed once.
struct Row {
    record: csv::StringRecord,
    /// One GPU, less than all of it.
    sharing: bool,
    /// Per GPU.
    gpu_milli: u64,
    cpu_milli: u64,
    /// `num_gpu × gpu_milli`.
    gpu_total: u64,
}

/// The manifest written beside the generated lists: how each was made, with the seed.
/// `cluster_cpu_per_gpu` is the cluster's CPU milli per GPU milli, for comparison with each list's.
pub fn manifest(seed: u64, made: &[(Variant, Counts)], default: Counts, cluster_cpu_per_gpu: f64) -> String {
    let mut out = format!(
        "Generated by `mlsim stress --seed {seed}` from the bundled openb default list ({} GPU pods of which {} \
         share a GPU, {} CPU-only; {} CPU cores asked per GPU asked). The cluster has {cluster_cpu_per_gpu:.1} \
         cores per GPU.\n\n\
         | workload | made from the default | pods | CPU-only | sharing | whole-GPU | cores asked per GPU asked |\n\
         |---|---|---|---|---|---|---|\n",
        default.sharing + default.whole_gpu,
        default.sharing,
        default.cpu_only,
        cores(&default),
    );
    for (v, c) in made {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            v.name,
            v.describe(),
            c.pods,
            c.cpu_only,
            c.sharing,
            c.whole_gpu,
            cores(c)
        );
    }
    out
}

impl Counts {
    pub fn cores_per_gpu(&self) -> f64 {
        self.cpu_milli as f64 / self.gpu_milli.max(1) as f64
    }
}

fn cores(c: &Counts) -> String {
    format!("{:.1}", c.cores_per_gpu())
}

/// The default list's own counts (what `generate` reports for a variant that changes nothing).
pub fn default_counts(default_csv: &[u8]) -> anyhow::Result<Counts> {
    let unchanged = Variant { name: "default", cpu_only_factor: 1, gpu_pods: GpuPods::Default };
    Ok(generate(default_csv, &unchanged, 0)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &[u8] = include_bytes!("../traces/openb_pod_list_default.csv");

    fn variant(name: &str) -> Variant {
        *VARIANTS.iter().find(|v| v.name == name).unwrap()
    }

    fn rows(csv_bytes: &[u8]) -> Vec<Vec<String>> {
        csv::Reader::from_reader(csv_bytes).records().map(|r| r.unwrap().iter().map(String::from).collect()).collect()
    }

    #[test]
    fn more_cpu_only_pods_keep_the_gpu_pods_and_multiply_the_cpu_only_ones() {
        let (bytes, c) = generate(DEFAULT, &variant("cpux3"), 7).unwrap();
        assert_eq!((c.pods, c.cpu_only, c.sharing, c.whole_gpu), (7064 + 3 * 1088, 3 * 1088, 3078, 7064 - 3078));
        let default = default_counts(DEFAULT).unwrap();
        assert_eq!(c.gpu_milli, default.gpu_milli, "the GPU pods are the default's");
        assert!(
            c.cores_per_gpu() > default.cores_per_gpu() + 5.0,
            "{} vs {}",
            c.cores_per_gpu(),
            default.cores_per_gpu()
        );
        let rows = rows(&bytes);
        assert_eq!(rows.len(), c.pods);
        // Every drawn CPU-only pod is one of the default's CPU-only shapes.
        let default = self::rows(DEFAULT);
        let shapes: std::collections::HashSet<&[String]> =
            default.iter().filter(|r| r[3] == "0").map(|r| &r[1..6]).collect();
        assert!(rows.iter().filter(|r| r[3] == "0").all(|r| shapes.contains(&r[1..6])));
        let names: std::collections::HashSet<&String> = rows.iter().map(|r| &r[0]).collect();
        assert_eq!(names.len(), rows.len(), "every pod has its own name");
    }

    #[test]
    fn sharing_variants_draw_only_shares_in_their_range() {
        let (bytes, c) = generate(DEFAULT, &variant("sharelarge"), 7).unwrap();
        assert_eq!((c.sharing, c.whole_gpu, c.cpu_only), (7064, 0, 1088));
        let milli: Vec<u32> = rows(&bytes).iter().filter(|r| r[3] != "0").map(|r| r[4].parse().unwrap()).collect();
        assert!(milli.iter().all(|m| (501..=999).contains(m)), "{:?}", milli.iter().max());
        assert!(milli.iter().collect::<std::collections::HashSet<_>>().len() > 3, "a mix of share sizes");
    }

    #[test]
    fn a_variant_is_a_function_of_its_seed() {
        let v = variant("sharesmall-cpux2");
        assert_eq!(generate(DEFAULT, &v, 7).unwrap().0, generate(DEFAULT, &v, 7).unwrap().0);
        assert_ne!(generate(DEFAULT, &v, 7).unwrap().0, generate(DEFAULT, &v, 8).unwrap().0);
    }

    #[test]
    fn a_malformed_default_list_is_an_error_naming_the_row() {
        let bad = b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,1024,x,0\n";
        let e = generate(bad, &variant("cpux2"), 7).unwrap_err();
        assert!(format!("{e:#}").contains("row 2"), "{e:#}");
    }
}
