//! Seeded load curves: CPU demand of each workload over time, a diurnal wave plus bursts plus noise.
//!
//! Workload `w`'s demand at time t (millicores):
//! `base_w · (1 + 0.5·sin(2π·t/day + φ_w)) · burst_w(t) · (1 + ε)`, with `base_w` uniform in 0.9..1.5
//! cores, `φ_w` uniform, bursts a Poisson number (mean 3 per day) of plateaus ×1.8..×3.0 lasting 10–40
//! minutes (60 s ramp up, 300 s ramp down), and ε uniform ±5% per step. Everything from one ChaCha8 seed.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const DAY_S: f64 = 86_400.0;

#[derive(Debug, Clone)]
pub struct Burst {
    pub start_s: f64,
    pub length_s: f64,
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub struct LoadCurve {
    pub base_milli: f64,
    pub phase: f64,
    pub bursts: Vec<Burst>,
    /// Demand per step, millicores.
    pub demand: Vec<f64>,
}

impl Burst {
    fn factor_at(&self, t: f64) -> f64 {
        const RAMP_UP: f64 = 60.0;
        const RAMP_DOWN: f64 = 300.0;
        let x = t - self.start_s;
        let shape = if x < 0.0 {
            0.0
        } else if x < RAMP_UP {
            x / RAMP_UP
        } else if x < self.length_s {
            1.0
        } else if x < self.length_s + RAMP_DOWN {
            1.0 - (x - self.length_s) / RAMP_DOWN
        } else {
            0.0
        };
        1.0 + (self.factor - 1.0) * shape
    }
}

/// One curve per workload, sampled every `step_s` over `duration_s`.
pub fn curves(seed: u64, workloads: usize, duration_s: f64, step_s: f64) -> Vec<LoadCurve> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let steps = (duration_s / step_s).ceil() as usize;
    (0..workloads)
        .map(|_| {
            let base_milli = rng.random_range(900.0..1500.0);
            let phase = rng.random_range(0.0..std::f64::consts::TAU);
            // Poisson(3 × duration/day) by counting exponential gaps.
            let mut bursts = Vec::new();
            let mean_gap = DAY_S / 3.0;
            let mut t = -mean_gap * rng.random_range(f64::EPSILON..1.0f64).ln();
            while t < duration_s {
                bursts.push(Burst {
                    start_s: t,
                    length_s: rng.random_range(600.0..2400.0),
                    factor: rng.random_range(1.8..3.0),
                });
                t += -mean_gap * rng.random_range(f64::EPSILON..1.0f64).ln();
            }
            let demand = (0..steps)
                .map(|k| {
                    let t = k as f64 * step_s;
                    let diurnal = 1.0 + 0.5 * (std::f64::consts::TAU * t / DAY_S + phase).sin();
                    let burst = bursts.iter().map(|b| b.factor_at(t)).fold(1.0, f64::max);
                    let noise = 1.0 + rng.random_range(-0.05..0.05);
                    base_milli * diurnal * burst * noise
                })
                .collect();
            LoadCurve { base_milli, phase, bursts, demand }
        })
        .collect()
}
