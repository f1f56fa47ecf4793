//! The hybrid autoscaling paper's analytic bandwidth model, on a tree of `N` network tiers:
//!
//! - HPA: `(Mc + Md)·N·R·BW_req + 2·N·R·BW_syn` (new pods land anywhere: sync crosses every tier)
//! - VPA: `(Mc + Md)·N·R·BW_req` (no new pods)
//! - Hybrid: `(Mc + Md)·N·R·BW_req + 2·R·BW_syn` (new pods next to old ones: sync stays in one tier)

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

/// The paper gives the formulas, not its parameter values; these defaults are ours, chosen to give
/// curves of the paper's shape (request traffic and sync traffic of the same order).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelParams {
    /// `Mc`: pods running now.
    pub mc: f64,
    /// `Md`: pods to add.
    pub md: f64,
    /// `BW_req`: MB per request.
    pub bw_req: f64,
    /// `BW_syn`: MB of state sync per request between an old and a new pod.
    pub bw_syn: f64,
    /// `R` for the plot against tiers (requests/s to each pod).
    pub requests: f64,
    /// `N` for the plot against requests.
    pub tiers: u32,
    /// The largest `N` of the tier sweep.
    pub max_tiers: u32,
    /// The largest `R` of the request sweep.
    pub max_requests: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            mc: 3.0,
            md: 2.0,
            bw_req: 0.01,
            bw_syn: 0.05,
            requests: 100.0,
            tiers: 3,
            max_tiers: 6,
            max_requests: 1000.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bandwidth {
    pub hpa: f64,
    pub vpa: f64,
    pub hybrid: f64,
}

impl ModelParams {
    fn request_term(&self, n: f64, r: f64) -> f64 {
        (self.mc + self.md) * n * r * self.bw_req
    }

    /// The sync terms alone.
    pub fn sync(&self, tiers: u32, requests: f64) -> Bandwidth {
        let n = f64::from(tiers);
        Bandwidth { hpa: 2.0 * n * requests * self.bw_syn, vpa: 0.0, hybrid: 2.0 * requests * self.bw_syn }
    }

    /// Total bandwidth (MB/s) for `tiers` tiers and `requests` requests/s per pod.
    pub fn bandwidth(&self, tiers: u32, requests: f64) -> Bandwidth {
        let base = self.request_term(f64::from(tiers), requests);
        let s = self.sync(tiers, requests);
        Bandwidth { hpa: base + s.hpa, vpa: base, hybrid: base + s.hybrid }
    }

    pub fn tier_sweep(&self) -> Vec<(u32, Bandwidth)> {
        (1..=self.max_tiers).map(|n| (n, self.bandwidth(n, self.requests))).collect()
    }

    pub fn request_sweep(&self) -> Vec<(f64, Bandwidth)> {
        (0..=10).map(|k| self.max_requests * f64::from(k) / 10.0).map(|r| (r, self.bandwidth(self.tiers, r))).collect()
    }

    pub fn describe(&self) -> String {
        format!(
            "Mc = {} pods, Md = {} pods, BW_req = {} MB/request, BW_syn = {} MB/request; tier sweep N = 1..{} at R = {} requests/s; request sweep R = 0..{} at N = {}",
            self.mc, self.md, self.bw_req, self.bw_syn, self.max_tiers, self.requests, self.max_requests, self.tiers
        )
    }
}

pub fn markdown(params: &ModelParams) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| N tiers (R = {}) | HPA MB/s | VPA MB/s | hybrid MB/s |", params.requests);
    out.push_str("|---|---|---|---|\n");
    for (n, b) in params.tier_sweep() {
        let _ = writeln!(out, "| {n} | {:.1} | {:.1} | {:.1} |", b.hpa, b.vpa, b.hybrid);
    }
    let _ = writeln!(out, "\n| R requests/s (N = {}) | HPA MB/s | VPA MB/s | hybrid MB/s |", params.tiers);
    out.push_str("|---|---|---|---|\n");
    for (r, b) in params.request_sweep() {
        let _ = writeln!(out, "| {r:.0} | {:.1} | {:.1} | {:.1} |", b.hpa, b.vpa, b.hybrid);
    }
    out
}

/// A curve of the chart: name, value, colour.
type Series = (&'static str, fn(&Bandwidth) -> f64, RGBColor);

fn line_chart(path: &Path, title: &str, x_desc: &str, points: &[(f64, Bandwidth)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = points.iter().map(|p| p.0).fold(0.0, f64::max);
    let x_min = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let y_max = points.iter().map(|p| p.1.hpa).fold(0.0, f64::max).max(1e-9) * 1.08;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc(x_desc).y_desc("bandwidth (MB/s)").draw()?;
    let series: [Series; 3] = [("HPA", |b| b.hpa, RED), ("hybrid", |b| b.hybrid, BLUE), ("VPA", |b| b.vpa, GREEN)];
    for (name, get, color) in series {
        let data: Vec<(f64, f64)> = points.iter().map(|(x, b)| (*x, get(b))).collect();
        chart.draw_series(data.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Writes `model-tiers.svg` and `model-requests.svg` into `dir`.
pub fn write_svgs(params: &ModelParams, dir: &Path) -> anyhow::Result<()> {
    let tiers: Vec<(f64, Bandwidth)> = params.tier_sweep().into_iter().map(|(n, b)| (f64::from(n), b)).collect();
    line_chart(
        &dir.join("model-tiers.svg"),
        &format!("Analytic model: bandwidth vs network tiers (R = {} req/s)", params.requests),
        "number of network tiers N",
        &tiers,
    )?;
    line_chart(
        &dir.join("model-requests.svg"),
        &format!("Analytic model: bandwidth vs requests (N = {} tiers)", params.tiers),
        "requests per pod R (req/s)",
        &params.request_sweep(),
    )
}
