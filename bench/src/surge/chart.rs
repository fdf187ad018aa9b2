//! One SVG chart for one or more surges: visitors reaching the booking page
//! per second, and the site's requests in flight against its capacity (a
//! step line when the capacity changed during the run). When a run read an
//! adaptive room's pace, a third panel draws it against what the site can
//! take, both in visitors a minute.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;

const COLOURS: [RGBColor; 4] = [
    RGBColor(200, 40, 40),
    RGBColor(20, 100, 200),
    RGBColor(40, 150, 60),
    RGBColor(150, 90, 10),
];

/// Each panel's height (the chart is 960 wide).
const PANEL_HEIGHT: u32 = 360;

/// The opening of a launch event.
const OPENING: RGBColor = RGBColor(150, 150, 150);

/// Draws `runs` (label, report) into an SVG file at `path`.
pub fn draw(path: &Path, runs: &[(&str, &Report)]) -> Result<(), String> {
    draw_inner(path, runs).map_err(|error| format!("cannot draw {}: {error}", path.display()))
}

fn draw_inner(path: &Path, runs: &[(&str, &Report)]) -> Result<(), Box<dyn std::error::Error>> {
    let with_pace = runs
        .iter()
        .any(|(_, report)| !report.pace_timeline.is_empty());
    let panels = if with_pace { 3 } else { 2 };
    let root = SVGBackend::new(path, (960, PANEL_HEIGHT * panels)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, rest) = root.split_vertically(PANEL_HEIGHT);
    let (lower, pace_panel) = rest.split_vertically(PANEL_HEIGHT);

    let seconds = runs
        .iter()
        .map(|(_, report)| {
            let by_admission = report.admissions_per_second.len() as f64;
            let by_samples = report.origin_concurrency.last().map_or(0.0, |(at, _)| *at);
            let by_pace = report.pace_timeline.last().map_or(0.0, |(at, _)| *at);
            by_admission.max(by_samples).max(by_pace)
        })
        .fold(1.0_f64, f64::max);
    let admissions_max = runs
        .iter()
        .flat_map(|(_, report)| report.admissions_per_second.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;

    // A launch event's opening, marked on both charts (times count from the
    // run's start, when its pre-queue opened).
    let opening = runs
        .iter()
        .find_map(|(_, report)| report.event.as_ref().map(|event| event.opens_in_seconds));
    let x_desc = match opening {
        Some(_) => "seconds after the start (the pre-queue's); grey: the opening",
        None => "seconds after opening",
    };
    let seconds = seconds.max(opening.unwrap_or(0.0) + 1.0);

    let mut admissions = ChartBuilder::on(&upper)
        .caption(
            "Visitors reaching the booking page, per second",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..seconds, 0.0..admissions_max * 1.1)?;
    admissions
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("visitors / s")
        .draw()?;
    for (index, (label, report)) in runs.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        admissions
            .draw_series(LineSeries::new(
                report
                    .admissions_per_second
                    .iter()
                    .enumerate()
                    .map(|(second, count)| (second as f64, *count as f64)),
                colour.stroke_width(2),
            ))?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    if let Some(at) = opening {
        admissions
            .draw_series(LineSeries::new(
                [(at, 0.0), (at, admissions_max * 1.1)],
                OPENING.stroke_width(2),
            ))?
            .label("opening")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], OPENING.stroke_width(2)));
    }
    admissions
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let capacity = runs
        .iter()
        .filter_map(|(_, report)| report.origin_capacity)
        .chain(runs.iter().flat_map(|(_, report)| {
            report
                .origin_capacity_timeline
                .iter()
                .map(|(_, capacity)| *capacity)
        }))
        .max()
        .map(f64::from);
    let concurrency_max = runs
        .iter()
        .flat_map(|(_, report)| report.origin_concurrency.iter().map(|(_, n)| *n))
        .max()
        .unwrap_or(1) as f64;
    let top = concurrency_max.max(capacity.unwrap_or(1.0)).max(1.0) * 1.1;
    let mut load = ChartBuilder::on(&lower)
        .caption("The site's requests in flight", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..seconds, 0.0..top)?;
    load.configure_mesh()
        .x_desc(x_desc)
        .y_desc("requests")
        .draw()?;
    for (index, (label, report)) in runs.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        load.draw_series(LineSeries::new(
            report
                .origin_concurrency
                .iter()
                .map(|(at, n)| (*at, *n as f64)),
            colour.stroke_width(2),
        ))?
        .label(*label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    // The site's own timeline when it gave one (each run's site has its
    // own start), else the capacity the crowd was told, as a flat line.
    let timelines: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .filter(|(_, report)| !report.origin_capacity_timeline.is_empty())
        .map(|(_, report)| steps(&report.origin_capacity_timeline, seconds))
        .collect();
    let capacity_lines = match (timelines.is_empty(), capacity) {
        (false, _) => timelines,
        (true, Some(capacity)) => vec![vec![(0.0, capacity), (seconds, capacity)]],
        (true, None) => Vec::new(),
    };
    for (index, line) in capacity_lines.into_iter().enumerate() {
        let series = load.draw_series(LineSeries::new(line, BLACK.stroke_width(1)))?;
        if index == 0 {
            series
                .label("capacity")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        }
    }
    if let Some(at) = opening {
        load.draw_series(LineSeries::new(
            [(at, 0.0), (at, top)],
            OPENING.stroke_width(2),
        ))?;
    }
    load.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    if with_pace {
        draw_pace(&pace_panel, runs, seconds, x_desc, opening)?;
    }
    root.present()?;
    Ok(())
}

/// Each run's pace against the site's capacity, in visitors a minute.
fn draw_pace(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    runs: &[(&str, &Report)],
    seconds: f64,
    x_desc: &str,
    opening: Option<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = runs
        .iter()
        .flat_map(|(_, report)| {
            report
                .pace_timeline
                .iter()
                .chain(&report.site_visitors_per_minute_timeline)
                .map(|(_, value)| *value)
        })
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut pace = ChartBuilder::on(area)
        .caption(
            "The room's pace against what the site can take",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..seconds, 0.0..top)?;
    pace.configure_mesh()
        .x_desc(x_desc)
        .y_desc("visitors / minute")
        .draw()?;
    for (index, (label, report)) in runs.iter().enumerate() {
        if report.pace_timeline.is_empty() {
            continue;
        }
        let colour = COLOURS[index % COLOURS.len()];
        pace.draw_series(LineSeries::new(
            report.pace_timeline.iter().copied(),
            colour.stroke_width(2),
        ))?
        .label(format!("{label}: pace"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    // The site of the runs that read a pace (each run's site has its own
    // start).
    let sites = runs.iter().filter(|(_, report)| {
        !report.pace_timeline.is_empty() && !report.site_visitors_per_minute_timeline.is_empty()
    });
    for (index, (_, report)) in sites.enumerate() {
        let line = steps(&report.site_visitors_per_minute_timeline, seconds);
        let series = pace.draw_series(LineSeries::new(line, BLACK.stroke_width(1)))?;
        if index == 0 {
            series
                .label("the site's capacity")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        }
    }
    if let Some(at) = opening {
        pace.draw_series(LineSeries::new(
            [(at, 0.0), (at, top)],
            OPENING.stroke_width(2),
        ))?;
    }
    pace.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A capacity timeline as the corners of a step line, held until `until`.
fn steps<T: Copy + Into<f64>>(timeline: &[(f64, T)], until: f64) -> Vec<(f64, f64)> {
    let mut corners = Vec::with_capacity(timeline.len() * 2 + 1);
    for (at, capacity) in timeline {
        if let Some(&(_, before)) = corners.last() {
            corners.push((*at, before));
        }
        corners.push((*at, (*capacity).into()));
    }
    if let Some(&(at, last)) = corners.last() {
        corners.push((until.max(at), last));
    }
    corners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_a_pace_gets_a_third_panel() {
        let dir = std::env::temp_dir().join(format!("anteroom-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let adaptive = crate::surge::report::adaptive_example();
        let path = dir.join("pace.svg");
        draw(&path, &[("through anteroom", &adaptive)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("height=\"1080\""), "{svg:.200}");
        assert!(svg.contains("pace against what the site can take"));
        assert!(svg.contains("through anteroom: pace"));
        assert!(svg.contains("visitors / minute"));

        let mut without = adaptive.clone();
        without.pace_timeline.clear();
        draw(&path, &[("through anteroom", &without)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("height=\"720\""), "{svg:.200}");
        assert!(!svg.contains("visitors / minute"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_timeline_is_drawn_as_steps() {
        assert_eq!(
            steps(&[(0.0, 50), (3.0, 20), (8.0, 50)], 10.0),
            vec![
                (0.0, 50.0),
                (3.0, 50.0),
                (3.0, 20.0),
                (8.0, 20.0),
                (8.0, 50.0),
                (10.0, 50.0)
            ]
        );
        assert!(steps::<u32>(&[], 10.0).is_empty());
        assert_eq!(
            steps(&[(0.0, 3000.0), (60.0, 1500.0)], 90.0),
            vec![
                (0.0, 3000.0),
                (60.0, 3000.0),
                (60.0, 1500.0),
                (90.0, 1500.0)
            ],
            "visitors a minute too"
        );
    }
}
