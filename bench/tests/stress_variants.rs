//! `mlsim stress` end to end on the library: a variant generated from the bundled default list, written
//! as a pod list, read back as the replay reads any trace, and replayed under the four policies. Four
//! times the default's CPU-only pods must make CPU the scarce resource, so that every policy leaves far
//! more GPU unallocated than on the default: the variants stress what they claim to.

use mlsim::stress::{VARIANTS, default_counts, generate, manifest};
use mlsim::stress_table::{POLICIES, markdown, run};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, Source, read_nodes, read_pods};

const SEEDS: [u64; 2] = [42, 43];

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
    let cluster_ratio = 17.2;
    let text = manifest(1, &[(variant, counts)], default_counts(default_csv).unwrap(), cluster_ratio);
    assert!(text.contains("| cpux4 |") && text.contains("| 23.5 |"), "{text}");
    let table = markdown(&[stressed]);
    assert_eq!(table.lines().count(), 3, "{table}");
}
