//! SVG charts with plotters' SVG backend. Text is written as SVG `<text>` elements, so no
//! font files are read (plotters' `ttf` feature is off; it lays text out with fixed
//! metrics).

use plotters::prelude::*;

use crate::report::Report;

const MAIN_WORKLOADS: &[&str] = &["none", "read", "write", "login"];

fn targets(report: &Report) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for m in &report.measurements {
        if !v.contains(&m.target) {
            v.push(m.target.clone());
        }
    }
    v
}

/// Grouped bars: requests/s per workload, one bar per system.
pub fn throughput(report: &Report) -> Option<String> {
    let workloads: Vec<&str> = MAIN_WORKLOADS
        .iter()
        .copied()
        .filter(|w| report.measurements.iter().any(|m| m.workload == *w))
        .collect();
    if workloads.is_empty() {
        return None;
    }
    let targets = targets(report);
    let ymax = report
        .measurements
        .iter()
        .filter(|m| workloads.contains(&m.workload.as_str()))
        .map(|m| m.rps)
        .fold(0.0, f64::max)
        * 1.1;
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let height = 480 + 18 * targets.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (1000, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = workloads.len() as f64;
        let names = workloads.clone();
        let mut chart = ChartBuilder::on(&root)
            .caption("Requests per second (higher is better)", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n, 0.0..ymax.max(1.0))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(workloads.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                    names[i].to_string()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
            .y_desc("requests/s")
            .draw()?;
        let slots = targets.len().max(1) as f64;
        let width = 0.8 / slots;
        for (ti, t) in targets.iter().enumerate() {
            let color = Palette99::pick(ti).mix(0.9);
            let bars: Vec<Rectangle<(f64, f64)>> = workloads
                .iter()
                .enumerate()
                .filter_map(|(wi, w)| {
                    let rps = report.rps(t, w)?;
                    let x0 = wi as f64 + 0.1 + ti as f64 * width;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + width * 0.9, rps)],
                        color.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(bars)?
                .label(t.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], Palette99::pick(ti).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })();
    result.ok()?;
    Some(svg)
}

/// Two panels over the payload sweep: requests/s, and cookie bytes per request.
pub fn payload(report: &Report) -> Option<String> {
    let points: Vec<_> = report
        .measurements
        .iter()
        .filter_map(|m| m.payload_bytes.map(|b| (m, b as f64)))
        .collect();
    if points.is_empty() {
        return None;
    }
    let targets = targets(report);
    let xmax = points.iter().map(|(_, b)| *b).fold(0.0, f64::max) * 1.05;
    let rmax = points.iter().map(|(m, _)| m.rps).fold(0.0, f64::max) * 1.1;
    let cmax = points
        .iter()
        .map(|(m, _)| m.cookie_sent_per_req.max(m.cookie_received_per_req))
        .fold(0.0, f64::max)
        * 1.1;
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (1000, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(450);
        for (panel, area) in [(0, top), (1, bottom)] {
            let (caption, ymax, desc) = if panel == 0 {
                ("Payload sweep: requests per second", rmax, "requests/s")
            } else {
                (
                    "Payload sweep: cookie bytes per request (sent: thick, received: thin)",
                    cmax,
                    "bytes",
                )
            };
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..xmax.max(1.0), 0.0..ymax.max(1.0))?;
            chart
                .configure_mesh()
                .x_desc("session data, bytes")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_desc(desc)
                .y_label_formatter(&|y| {
                    if panel == 0 {
                        format!("{:.0}k", y / 1000.0)
                    } else {
                        format!("{y:.0}")
                    }
                })
                .draw()?;
            for (ti, t) in targets.iter().enumerate() {
                let mut series: Vec<(f64, f64, f64)> = points
                    .iter()
                    .filter(|(m, _)| &m.target == t)
                    .map(|(m, b)| {
                        if panel == 0 {
                            (*b, m.rps, 0.0)
                        } else {
                            (*b, m.cookie_sent_per_req, m.cookie_received_per_req)
                        }
                    })
                    .collect();
                if series.is_empty() {
                    continue;
                }
                series.sort_by(|a, b| a.0.total_cmp(&b.0));
                let color = Palette99::pick(ti);
                chart
                    .draw_series(LineSeries::new(
                        series.iter().map(|p| (p.0, p.1)),
                        color.stroke_width(2),
                    ))?
                    .label(t.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], Palette99::pick(ti))
                    });
                chart.draw_series(
                    series
                        .iter()
                        .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                )?;
                if panel == 1 {
                    // Received bytes, as a thin line.
                    let segs: Vec<PathElement<(f64, f64)>> = series
                        .windows(2)
                        .map(|w| {
                            PathElement::new(
                                vec![(w[0].0, w[0].2), (w[1].0, w[1].2)],
                                Palette99::pick(ti),
                            )
                        })
                        .collect();
                    chart.draw_series(segs)?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    result.ok()?;
    Some(svg)
}
