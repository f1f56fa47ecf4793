//! `mlsim stress` end to end on the library: variants generated from the bundled default list, written
//! as pod lists, read back as the replay reads any trace, and replayed under the four policies. The
//! variants must stress what they claim to, and mlsched must hold up where CPU runs out first.

use mlsched::plugins::policy::Policy;
use mlsim::stress::{VARIANTS, default_counts, generate, manifest};
use mlsim::stress_table::{POLICIES, markdown, run};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, Source, read_nodes, read_pods};

const SEEDS: [u64; 2] = [42, 43];

/// How far ahead of the better of FGD and BestFit mlsched's two must be on `cpux3` and `cpux4`.
const CPU_HEAVY_LEAD: f64 = 3.0;

/// Four times the default's CPU-only pods make CPU the scarce resource: every policy leaves far more GPU
/// unallocated than on the default.
#[test]
fn four_times_the_cpu_only_pods_leave_gpus_unallocated_under_every_policy() {
    let Source::Bundled { bytes: default_csv, .. } = BUNDLED_PODS else { unreachable!() };
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let variant = *VARIANTS.iter().find(|v| v.name == "cpux4").unwrap();
    let (csv, counts) = generate(default_csv, &variant, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = mlsim::reproduce::workload_file(dir.path(), variant.name);
    std::fs::write(&file, &csv).unwrap();

    let stressed = run(variant.name, &nodes, &read_pods(&Source::File(&file)).unwrap(), &SEEDS);
    let default = run("default", &nodes, &read_pods(&BUNDLED_PODS).unwrap(), &SEEDS);
    for p in POLICIES {
        eprintln!("{p}: default {:.2}, cpux4 {:.2}", default.mean(p), stressed.mean(p));
        assert!(
            stressed.mean(p) > default.mean(p) + 10.0,
            "{p}: {:.2} unallocated on cpux4, {:.2} on the default",
            stressed.mean(p),
            default.mean(p)
        );
    }
    let cluster_ratio = mlsched::plugins::cpu_feed::cluster_cpu_per_gpu_milli(&nodes);
    let text = manifest(1, &[(variant, counts)], default_counts(default_csv).unwrap(), cluster_ratio);
    assert!(text.contains("| cpux4 |") && text.contains("| 23.5 |") && text.contains("17.2 cores per GPU"), "{text}");
    let table = markdown(&[stressed]);
    assert_eq!(table.lines().count(), 3, "{table}");
}

/// mlsched's two leave at most as much GPU unallocated as the better of FGD and BestFit on every stress
/// variant. Where the GPU pods are the default's and the CPU-only pods 3x or 4x as many, they lead by
/// [`CPU_HEAVY_LEAD`] or more (6.8 and 9.1 points; the cost before the expected-fill view led by 1.6 and
/// 1.0, and was 0.66 behind FGD on `sharesmall-cpux2`, where the lead is now 0.06).
#[test]
fn mlsched_is_at_or_below_the_better_of_fgd_and_bestfit_on_the_stress_variants() {
    let Source::Bundled { bytes: default_csv, .. } = BUNDLED_PODS else { unreachable!() };
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let seeds: Vec<u64> = (42..=51).collect();
    let dir = tempfile::tempdir().unwrap();
    for variant in VARIANTS {
        let (csv, _) = generate(default_csv, &variant, 1).unwrap();
        let file = mlsim::reproduce::workload_file(dir.path(), variant.name);
        std::fs::write(&file, &csv).unwrap();
        let row = run(variant.name, &nodes, &read_pods(&Source::File(&file)).unwrap(), &seeds);
        let to_beat = match variant.name {
            "cpux3" | "cpux4" => row.best_baseline() - CPU_HEAVY_LEAD,
            _ => row.best_baseline(),
        };
        for p in [Policy::Mlsched, Policy::MlschedOnline] {
            eprintln!("{}: {p} {:.2}, to beat {to_beat:.2}", variant.name, row.mean(p));
            assert!(row.mean(p) <= to_beat, "{}: {p} {:.2} > {to_beat:.2}", variant.name, row.mean(p));
        }
    }
}
