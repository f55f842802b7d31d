//! SVG charts of a [`Report`], drawn with `plotters`:
//!
//! * `throughput_vs_conns.svg`: req/s against connections (log scale), one
//!   line per runtime, from `C6_concurrency_threshold`'s sweep. A closed
//!   loop of N clients asking for a 100 ms sleep can reach at most N × 10
//!   req/s: a line that bends below that is a server (or client) that
//!   could not keep up.
//! * `p99_vs_conns.svg`: the 99th percentile latency of the same runs;
//!   100 ms is the sleep itself, anything above it is queueing.
//! * `rss_vs_conns.svg`: the same runs' server RSS at the window's end.
//! * `rss_per_conn.svg`: KiB of server RSS per idle keep-alive connection
//!   (`C8_memory`), one bar per runtime.
//! * `throughput_vs_cores.svg`: `S1_multicore`'s req/s against the
//!   server's cores, one line per runtime and service.
//!
//! A chart whose runs are not in the report is not drawn.

use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::measure::Run;
use super::report::Report;

const SIZE: (u32, u32) = (720, 440);
const COLORS: [RGBColor; 4] =
    [RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(31, 119, 180), RGBColor(148, 103, 189)];

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("drawing a chart: {e}"))
}

/// One line per cell: `(conns, value)` points in order of conns.
fn series(runs: &[&Run], value: fn(&Run) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    lines_by(runs, |r| r.cell.clone(), |r| r.conns as f64, value)
}

/// One line per `name`: `(x, value)` points in order of x.
fn lines_by(
    runs: &[&Run],
    name: impl Fn(&Run) -> String,
    x: impl Fn(&Run) -> f64,
    value: fn(&Run) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in runs {
        let point = (x(r), value(r));
        let name = name(r);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, points)) => points.push(point),
            None => out.push((name, vec![point])),
        }
    }
    for (_, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn line_chart(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    lines: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
) -> io::Result<()> {
    let points = || lines.iter().flat_map(|(_, p)| p.iter().copied());
    let x_max = points().map(|p| p.0).fold(1.0, f64::max) * 1.5;
    let y_max = points().map(|p| p.1).fold(1.0, f64::max) * 1.3;
    let y_min = points().map(|p| p.1).filter(|y| *y > 0.0).fold(y_max, f64::min) / 1.5;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(err)?;
            for (i, (name, pts)) in lines.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    if log_y {
        draw!(
            builder
                .build_cartesian_2d((0.8..x_max).log_scale(), (y_min..y_max).log_scale())
                .map_err(err)?
        );
    } else {
        draw!(builder.build_cartesian_2d((0.8..x_max).log_scale(), 0.0..y_max).map_err(err)?);
    }
    root.present().map_err(err)
}

fn bar_chart(path: &Path, title: &str, y_desc: &str, bars: &[(String, f64)]) -> io::Result<()> {
    let y_max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.25;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..bars.len() as f64, 0.0..y_max)
        .map_err(err)?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    for (i, (_, value)) in bars.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let x = i as f64;
        chart
            .draw_series([Rectangle::new([(x + 0.2, 0.0), (x + 0.8, *value)], color.filled())])
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                format!("{value:.1}"),
                (x + 0.35, *value + y_max * 0.02),
                ("sans-serif", 14),
            )])
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Draws the charts the report has runs for into `dir`; returns their
/// paths.
///
/// # Errors
///
/// When a file cannot be written or plotters fails.
pub fn draw(report: &Report, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let sweep: Vec<&Run> = report.runs.iter().filter(|r| r.claim.starts_with("C6")).collect();
    if !sweep.is_empty() {
        let path = dir.join("throughput_vs_conns.svg");
        let lines = series(&sweep, |r| r.req_per_s);
        let title = "C6: req/s vs connections (sleep 100 ms)";
        line_chart(&path, title, ("connections", "req/s"), &lines, false)?;
        written.push(path);
        let path = dir.join("p99_vs_conns.svg");
        let lines = series(&sweep, |r| r.p99_ms);
        let title = "C6: p99 latency vs connections";
        line_chart(&path, title, ("connections", "p99 ms"), &lines, false)?;
        written.push(path);
        let with_rss: Vec<&Run> = sweep.iter().copied().filter(|r| r.rss_kib.is_some()).collect();
        if !with_rss.is_empty() {
            let path = dir.join("rss_vs_conns.svg");
            let lines = series(&with_rss, |r| r.rss_kib.map_or(0.0, |k| k as f64 / 1024.0));
            let title = "C6: server RSS vs connections";
            line_chart(&path, title, ("connections", "RSS MiB"), &lines, false)?;
            written.push(path);
        }
    }
    let scaling: Vec<&Run> = report
        .runs
        .iter()
        .filter(|r| r.claim.starts_with("S1") && r.get("cores").is_some())
        .collect();
    if !scaling.is_empty() {
        let path = dir.join("throughput_vs_cores.svg");
        let lines = lines_by(
            &scaling,
            |r| format!("{} {}", r.runtime, r.service),
            |r| r.get("cores").unwrap_or(1.0),
            |r| r.req_per_s,
        );
        let title = "S1: req/s vs server cores (client on other CPUs)";
        line_chart(&path, title, ("server cores", "req/s"), &lines, false)?;
        written.push(path);
    }
    let idle: Vec<(String, f64)> = report
        .runs
        .iter()
        .filter(|r| r.claim.starts_with("C8") && r.variant.as_deref() == Some("idle"))
        .filter_map(|r| Some((r.runtime.clone(), r.get("rss_kib_per_conn")?)))
        .collect();
    if !idle.is_empty() {
        let n = report
            .runs
            .iter()
            .find(|r| r.variant.as_deref() == Some("idle"))
            .map_or(0, |r| r.conns);
        let path = dir.join("rss_per_conn.svg");
        bar_chart(&path, &format!("C8: server RSS per idle connection ({n} conns)"), "KiB", &idle)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::claims::Options;
    use crate::lab::report::Machine;

    #[test]
    fn draws_the_charts_it_has_runs_for() {
        let mut runs = Vec::new();
        for (rt, k) in [("threads", 1.0), ("green", 0.9), ("stackless", 0.95)] {
            for conns in [1usize, 10, 100, 1000] {
                let mut r = Run::figure("C6_concurrency_threshold", rt, "blocking", "load");
                r.cell = format!("{rt}-blocking-sleep");
                r.conns = conns;
                r.req_per_s = conns as f64 * 10.0 * k;
                r.p99_ms = 100.0 + conns as f64 / 10.0;
                r.rss_kib = Some(4096 + conns as u64 * 10);
                runs.push(r);
            }
            for cores in [1.0, 2.0, 4.0] {
                let mut r = Run::figure("S1_multicore", rt, "blocking", "load");
                r.service = "echo".into();
                r.req_per_s = 50_000.0 * cores * k;
                r.extra.insert("cores".into(), cores);
                runs.push(r);
            }
            let mut idle = Run::figure("C8_memory", rt, "blocking", "idle");
            idle.conns = 1000;
            idle.extra.insert("rss_kib_per_conn".into(), 10.0 * k);
            runs.push(idle);
        }
        let report = Report { machine: Machine::probe(&Options::default()), claims: vec![], runs };
        let dir = std::env::temp_dir().join(format!("greenloop-charts-{}", std::process::id()));
        let written = draw(&report, &dir).unwrap();
        assert_eq!(written.len(), 5);
        for path in &written {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("threads"), "{}", path.display());
        }
        let empty = Report { runs: vec![], ..report };
        assert!(draw(&empty, &dir).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
