//! The table of `mlsim stress`: the policies to beat and mlsched's two on each stress variant, and
//! whether mlsched's leave at most as much GPU unallocated as the better of FGD and BestFit.

use std::fmt::Write as _;

use mlsched::core::Node;
use mlsched::plugins::policy::Policy;

use crate::compare::{run_all, unallocated_mean_sd};
use crate::stream::PAPER_TUNE;
use crate::trace::TracePod;

/// The policies replayed on each variant: the two best of the paper's, and mlsched's.
pub const POLICIES: [Policy; 4] = [Policy::BestFit, Policy::Fgd, Policy::Mlsched, Policy::MlschedOnline];

/// One variant's mean unallocated GPU % at 100 % arrived, per policy (in [`POLICIES`] order).
#[derive(Debug, Clone)]
pub struct StressRow {
    pub workload: String,
    pub means: Vec<(Policy, f64, f64)>,
}

impl StressRow {
    pub fn mean(&self, policy: Policy) -> f64 {
        self.means.iter().find(|(p, _, _)| *p == policy).map_or(f64::NAN, |m| m.1)
    }

    /// The better of FGD and BestFit: what mlsched must not lose to.
    pub fn best_baseline(&self) -> f64 {
        self.mean(Policy::Fgd).min(self.mean(Policy::BestFit))
    }

    /// mlsched's policies that leave more GPU unallocated than the best baseline.
    pub fn losses(&self) -> Vec<Policy> {
        [Policy::Mlsched, Policy::MlschedOnline].into_iter().filter(|p| self.mean(*p) > self.best_baseline()).collect()
    }
}

/// Replays [`POLICIES`] × `seeds` on `pods`, tuned to 1.3x as the paper did.
pub fn run(workload: &str, nodes: &[Node], pods: &[TracePod], seeds: &[u64]) -> StressRow {
    let summaries = run_all(nodes, pods, &POLICIES, seeds, PAPER_TUNE);
    let means = POLICIES
        .iter()
        .map(|&p| {
            let (mean, sd) = unallocated_mean_sd(&summaries, p);
            (p, mean, sd)
        })
        .collect();
    StressRow { workload: workload.to_string(), means }
}

pub fn markdown(rows: &[StressRow]) -> String {
    let mut out = String::from("| workload |");
    for p in POLICIES {
        let _ = write!(out, " {} |", p.name());
    }
    out.push_str(" mlsched's two ≤ min(fgd, bestfit) |\n|---|");
    out.push_str(&"---|".repeat(POLICIES.len() + 1));
    out.push('\n');
    for r in rows {
        let _ = write!(out, "| {} |", r.workload);
        for (_, mean, sd) in &r.means {
            let _ = write!(out, " {mean:.2} ± {sd:.2} |");
        }
        let losses = r.losses();
        let verdict = if losses.is_empty() {
            "yes".to_string()
        } else {
            format!("**no**: {}", losses.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "))
        };
        let _ = writeln!(out, " {verdict} |");
    }
    out
}
