//! SVGs of `mlsim autoscale run`: replicas and reserved CPU over time per mode, sync bandwidth per tier.

use std::path::Path;

use plotters::prelude::*;

use super::run::{ModeRun, TIERS};

const COLORS: [RGBColor; 4] = [BLUE, CYAN, RED, GREEN];

/// Two panels: total replicas, and reserved CPU against demand (cores), over time in hours.
pub fn timeseries_svg(path: &Path, runs: &[ModeRun]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 1));
    let hours = |t: f64| t / 3600.0;
    let t_max = runs.iter().flat_map(|r| r.series.t_s.last().copied()).fold(1.0, f64::max);
    let r_max = runs.iter().flat_map(|r| r.series.replicas.iter().copied()).max().unwrap_or(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("Replicas over time (all workloads)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..hours(t_max), 0.0..r_max)?;
    chart.configure_mesh().x_desc("hours").y_desc("replicas").draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let data: Vec<(f64, f64)> =
            run.series.t_s.iter().zip(&run.series.replicas).map(|(&t, &n)| (hours(t), n as f64)).collect();
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(1)))?
            .label(run.mode.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let c_max =
        runs.iter().flat_map(|r| r.series.cpu_cores.iter().chain(&r.series.demand_cores).copied()).fold(1.0, f64::max)
            * 1.1;
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("CPU reserved by the workloads vs demand (cores)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..hours(t_max), 0.0..c_max)?;
    chart.configure_mesh().x_desc("hours").y_desc("CPU cores").draw()?;
    if let Some(first) = runs.first() {
        let demand: Vec<(f64, f64)> =
            first.series.t_s.iter().zip(&first.series.demand_cores).map(|(&t, &c)| (hours(t), c)).collect();
        chart
            .draw_series(LineSeries::new(demand, BLACK.stroke_width(1)))?
            .label("demand")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    }
    for (i, run) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let data: Vec<(f64, f64)> =
            run.series.t_s.iter().zip(&run.series.cpu_cores).map(|(&t, &c)| (hours(t), c)).collect();
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(1)))?
            .label(run.mode.name())
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

/// Grouped bars: mean sync link load per tier, one bar per mode.
pub fn bandwidth_svg(path: &Path, runs: &[ModeRun]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let y_max =
        runs.iter().flat_map(|r| r.summary.sync_bandwidth_per_tier.values().copied()).fold(0.1, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("State-sync bandwidth per network tier (mean link load)", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..TIERS.len() as f64, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(TIERS.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < TIERS.len() {
                format!("{} tier", TIERS[i])
            } else {
                String::new()
            }
        })
        .y_desc("MB/s summed over the tier's links")
        .draw()?;
    let width = 0.8 / runs.len().max(1) as f64;
    for (m, run) in runs.iter().enumerate() {
        let color = COLORS[m % COLORS.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = TIERS
            .iter()
            .enumerate()
            .map(|(i, tier)| {
                let v = run.summary.sync_bandwidth_per_tier.get(*tier).copied().unwrap_or(0.0);
                let x0 = i as f64 + 0.1 + m as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], color.filled())
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(run.mode.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
