//! SVG line/point charts for the report (plotters, SVG backend only).

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A solid line.
    Line,
    /// A dashed-looking thin line (predictions).
    Thin,
    /// Markers only.
    Points,
}

/// One named series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
    /// How to draw it.
    pub style: Style,
}

impl Series {
    /// A series from points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Series {
            name: name.into(),
            points,
            style,
        }
    }
}

/// Axis options.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Axes<'a> {
    /// Chart title.
    pub title: &'a str,
    /// x-axis label.
    pub x_label: &'a str,
    /// y-axis label.
    pub y_label: &'a str,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn plot_error<E: std::fmt::Debug>(e: E) -> Error {
    Error::invalid("figure", "svg", format!("plotting failed: {e:?}"))
}

fn bounds(series: &[Series], log: bool, pick: fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let vals = series
        .iter()
        .flat_map(|s| s.points.iter().map(pick))
        .filter(|v| v.is_finite() && (!log || *v > 0.0));
    let (mut lo, mut hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return if log { (0.1, 1.0) } else { (0.0, 1.0) };
    }
    if log {
        lo /= 1.3;
        hi *= 1.3;
    } else {
        let pad = 0.05 * (hi - lo).max(1e-12 * hi.abs().max(1.0));
        lo -= pad;
        hi += pad;
    }
    (lo, hi)
}

/// Draws `series` into an SVG file at `path`.
///
/// # Errors
/// [`Error::InvalidParameter`] naming the figure if plotting or writing fails.
pub fn chart(path: &Path, axes: &Axes<'_>, series: &[Series]) -> Result<()> {
    let root = SVGBackend::new(path, (720, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (x0, x1) = bounds(series, axes.log_x, |p| p.0);
    let (y0, y1) = bounds(series, axes.log_y, |p| p.1);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(axes.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(axes.x_label)
                .y_desc(axes.y_label)
                .draw()
                .map_err(plot_error)?;
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| {
                        x.is_finite()
                            && y.is_finite()
                            && (!axes.log_x || *x > 0.0)
                            && (!axes.log_y || *y > 0.0)
                    })
                    .collect();
                match s.style {
                    Style::Line | Style::Thin => {
                        let width = if s.style == Style::Line { 2 } else { 1 };
                        chart
                            .draw_series(LineSeries::new(pts, color.stroke_width(width)))
                            .map_err(plot_error)?
                            .label(s.name.clone())
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                            });
                    }
                    Style::Points => {
                        chart
                            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                            .map_err(plot_error)?
                            .label(s.name.clone())
                            .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
                    }
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(plot_error)?;
        }};
    }
    match (axes.log_x, axes.log_y) {
        (false, false) => draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(plot_error)?),
        (true, false) => draw!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(plot_error)?),
        (false, true) => draw!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(plot_error)?),
        (true, true) => draw!(builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(plot_error)?),
    }
    root.present().map_err(plot_error)?;
    Ok(())
}
