//! The FGD artifact's published per-seed results, bundled from its `expected_results` (Apache-2.0), so a
//! replay can be checked against the paper without the original simulator.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, anyhow};
use flate2::read::GzDecoder;
use mlsched::plugins::policy::Policy;

const ALLOC: &[u8] = include_bytes!("../traces/fgd_artifact_expected_results/analysis_allo_discrete.csv.gz");
const FRAG: &[u8] = include_bytes!("../traces/fgd_artifact_expected_results/analysis_frag_discrete.csv.gz");

/// Per (workload, policy): the published per-seed values at 100 % arrived workload.
#[derive(Debug, Default)]
pub struct Published {
    pub unallocated_at_100: BTreeMap<(String, Policy), Vec<f64>>,
    pub frag_at_100: BTreeMap<(String, Policy), Vec<f64>>,
}

fn policy_of(artifact_name: &str) -> Option<Policy> {
    match artifact_name.split_once('-').map(|(_, n)| n)? {
        "Random" => Some(Policy::Random),
        "DotProd" => Some(Policy::DotProd),
        "GpuClustering" => Some(Policy::GpuClustering),
        "GpuPacking" => Some(Policy::GpuPacking),
        "BestFit" => Some(Policy::BestFit),
        "FGD" => Some(Policy::Fgd),
        _ => None,
    }
}

fn column_100(gz: &[u8], what: &str) -> anyhow::Result<BTreeMap<(String, Policy), Vec<f64>>> {
    let mut text = String::new();
    GzDecoder::new(gz).read_to_string(&mut text).with_context(|| format!("decompressing {what}"))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| anyhow!("{what}: no column {name}"));
    let (workload_col, policy_col, tune_col, at_100) = (col("workload")?, col("sc_policy")?, col("tune")?, col("100")?);
    let mut out: BTreeMap<(String, Policy), Vec<f64>> = BTreeMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{what}, row {}", i + 2))?;
        if &row[tune_col] != "1.3" {
            continue;
        }
        let Some(policy) = policy_of(&row[policy_col]) else { continue };
        let workload = row[workload_col].trim_start_matches("openb_pod_list_").to_string();
        let value: f64 = row[at_100].parse().with_context(|| format!("{what}, row {}, column 100", i + 2))?;
        out.entry((workload, policy)).or_default().push(value);
    }
    Ok(out)
}

impl Published {
    pub fn load() -> anyhow::Result<Published> {
        let alloc = column_100(ALLOC, "analysis_allo_discrete.csv.gz")?;
        let unallocated_at_100 =
            alloc.into_iter().map(|(k, v)| (k, v.into_iter().map(|a| 100.0 - a).collect())).collect();
        Ok(Published { unallocated_at_100, frag_at_100: column_100(FRAG, "analysis_frag_discrete.csv.gz")? })
    }

    pub fn workloads(&self) -> Vec<String> {
        let mut w: Vec<String> = self.unallocated_at_100.keys().map(|(w, _)| w.clone()).collect();
        w.dedup();
        w
    }

    pub fn mean_unallocated(&self, workload: &str, policy: Policy) -> Option<f64> {
        let v = self.unallocated_at_100.get(&(workload.to_string(), policy))?;
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_means_match_the_paper_table() {
        let p = Published::load().unwrap();
        assert_eq!(p.workloads().len(), 9);
        let fgd = p.mean_unallocated("default", Policy::Fgd).unwrap();
        assert!((fgd - 4.77).abs() < 0.006, "{fgd}");
        let random = p.mean_unallocated("default", Policy::Random).unwrap();
        assert!((random - 13.70).abs() < 0.006, "{random}");
        assert_eq!(p.unallocated_at_100[&("multigpu40".to_string(), Policy::BestFit)].len(), 10);
    }
}
