//! SVG of the allocation ratio against the arrived workload, one line per policy (mean over seeds), as
//! the FGD paper's Figure 9 plots it.

use std::path::Path;

use plotters::prelude::*;

use crate::buckets::MAX_ARRIVED_PCT;
use crate::replay::ReplaySummary;

pub fn allocation_svg(
    path: &Path,
    summaries: &[ReplaySummary],
    policies: &[String],
    title: &str,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..MAX_ARRIVED_PCT as f64, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("arrived GPU request (% of cluster GPU capacity)")
        .y_desc("GPU allocation ratio (%)")
        .draw()?;
    for (i, policy) in policies.iter().enumerate() {
        let runs: Vec<&ReplaySummary> = summaries.iter().filter(|s| &s.policy == policy).collect();
        let points: Vec<(f64, f64)> = (0..=MAX_ARRIVED_PCT)
            .filter_map(|k| {
                let values: Vec<f64> = runs.iter().filter_map(|s| s.alloc_pct_by_arrived[k]).collect();
                (!values.is_empty()).then(|| (k as f64, values.iter().sum::<f64>() / values.len() as f64))
            })
            .collect();
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(policy.clone())
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
