//! `saturate plot` and `optimize --plot`: pictures of optimizer reports, as SVG.
//!
//! Two panels: on the left the e-graph's growth per iteration of saturation (e-nodes,
//! and e-classes for a single report), on the right each measured candidate's estimated
//! cost against its measured time — in milliseconds for one report, relative to each
//! model's input for several (so models of any size share the axes), on the same linear
//! scale, with the diagonal where the two agree. Reports are what `optimize --json` prints.

use anyhow::{anyhow, bail, Context, Result};
use plotters::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What a picture needs of one report.
pub struct Report {
    pub name: String,
    /// (e-nodes, e-classes) after each iteration.
    pub growth: Vec<(usize, usize)>,
    /// (estimated ms, measured ms, kept) of each measured candidate; the input first.
    pub programs: Vec<(f64, f64, bool)>,
}

impl Report {
    /// Reads the parts of an `optimize --json` report a picture shows.
    pub fn from_json(name: &str, json: &Value) -> Result<Report> {
        let iterations = json["iterations"]
            .as_array()
            .ok_or_else(|| anyhow!("{name}: no `iterations`: not an optimize --json report"))?;
        let count = |it: &Value, key: &str| it[key].as_u64().unwrap_or(0) as usize;
        let growth = iterations.iter().map(|it| (count(it, "egraph_nodes"), count(it, "egraph_classes"))).collect();
        let programs = json["measured"]["programs"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let (estimate, measured) = (p["estimate_seconds"].as_f64()?, p["median_ms"].as_f64()?);
                        Some((estimate * 1e3, measured, p["kept"].as_bool().unwrap_or(false)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Report { name: name.to_string(), growth, programs })
    }
}

/// `saturate plot REPORT.json… --output FILE.svg`.
pub fn plot_cmd(paths: &[PathBuf], output: &Path, force: bool) -> Result<ExitCode> {
    if paths.is_empty() {
        bail!("give one or more reports written by `saturate optimize --json`");
    }
    check_output(output, force)?;
    let mut reports = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let json: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
        reports.push(Report::from_json(&name, &json)?);
    }
    draw(&reports, output)?;
    let programs: usize = reports.iter().map(|r| r.programs.len()).sum();
    println!("{}: {} reports, {programs} measured programs", output.display(), reports.len());
    Ok(ExitCode::SUCCESS)
}

/// Refuses what is not an `.svg` path, and an existing file without `force`.
pub fn check_output(output: &Path, force: bool) -> Result<()> {
    if output.extension().and_then(|e| e.to_str()) != Some("svg") {
        bail!("{}: the picture is SVG; name it FILE.svg", output.display());
    }
    super::refuse_overwrite(output, force)
}

/// Draws `reports` into `output` (SVG).
pub fn draw(reports: &[Report], output: &Path) -> Result<()> {
    let root = SVGBackend::new(output, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let (left, right) = root.split_horizontally(600);
    growth(reports, &left)?;
    estimates(reports, &right)?;
    root.present().map_err(drawing)?;
    Ok(())
}

fn drawing<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the picture: {e:?}")
}

/// Up to this many reports, the growth panel names each line.
const LEGEND_MAX: usize = 10;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn growth(reports: &[Report], area: &Area) -> Result<()> {
    let iterations = reports.iter().map(|r| r.growth.len()).max().unwrap_or(0).max(1);
    let most = reports.iter().flat_map(|r| r.growth.iter().map(|g| g.0)).max().unwrap_or(1).max(2) as f64;
    let least = reports.iter().flat_map(|r| r.growth.iter().map(|g| g.1.min(g.0))).min().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("e-graph growth", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(1..iterations + 1, (least / 1.5..most * 1.5).log_scale())
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("e-nodes")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(drawing)?;
    for (i, r) in reports.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let nodes = r.growth.iter().enumerate().map(|(k, g)| (k + 1, g.0.max(1) as f64));
        let series = chart.draw_series(LineSeries::new(nodes, color.stroke_width(2))).map_err(drawing)?;
        if (2..=LEGEND_MAX).contains(&reports.len()) {
            series.label(r.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        } else if reports.len() == 1 {
            series.label("e-nodes").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            let classes = r.growth.iter().enumerate().map(|(k, g)| (k + 1, g.1.max(1) as f64));
            let gray = RGBColor(120, 120, 120);
            chart
                .draw_series(LineSeries::new(classes, gray.stroke_width(2)))
                .map_err(drawing)?
                .label("e-classes")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], gray));
        }
    }
    if reports.len() <= LEGEND_MAX {
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(drawing)?;
    }
    Ok(())
}

fn estimates(reports: &[Report], area: &Area) -> Result<()> {
    // one report: milliseconds; several: relative to each one's input
    let relative = reports.len() > 1;
    let points: Vec<(f64, f64, bool)> = reports
        .iter()
        .flat_map(|r| {
            let (e0, m0) = r.programs.first().map_or((1.0, 1.0), |p| (p.0, p.1));
            r.programs.iter().map(move |&(e, m, kept)| if relative { (e / e0, m / m0, kept) } else { (e, m, kept) })
        })
        .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.0.is_finite() && p.1.is_finite())
        .collect();
    let (unit, caption) = if relative {
        ("relative to the input", format!("estimate against the clock, {} programs", points.len()))
    } else {
        ("ms", format!("estimate against the clock, {} programs", points.len()))
    };
    let (lo, hi) =
        points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.0).min(p.1), hi.max(p.0).max(p.1)));
    // linear axes, the same on both, so that the diagonal is where the two agree
    let (lo, hi) =
        if points.is_empty() { (0.5, 2.0) } else { (lo - 0.08 * (hi - lo) - 1e-9, hi + 0.08 * (hi - lo) + 1e-9) };
    let (lo, hi) = (lo.max(0.0), hi);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc(format!("estimated, {unit}"))
        .y_desc(format!("measured, {unit}"))
        .x_label_formatter(&|v| format!("{v:.3}"))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .draw()
        .map_err(drawing)?;
    let gray = RGBColor(160, 160, 160);
    chart.draw_series(LineSeries::new([(lo, lo), (hi, hi)], gray.stroke_width(1))).map_err(drawing)?;
    let blue = RGBColor(40, 90, 200);
    let kept = RGBColor(220, 80, 30);
    chart
        .draw_series(points.iter().filter(|p| !p.2).map(|&(e, m, _)| Circle::new((e, m), 4, blue.filled())))
        .map_err(drawing)?
        .label("candidate")
        .legend(move |(x, y)| Circle::new((x + 8, y), 4, blue.filled()));
    chart
        .draw_series(points.iter().filter(|p| p.2).map(|&(e, m, _)| Circle::new((e, m), 5, kept.filled())))
        .map_err(drawing)?
        .label("kept")
        .legend(move |(x, y)| Circle::new((x + 8, y), 5, kept.filled()));
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(drawing)?;
    Ok(())
}
