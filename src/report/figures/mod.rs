//! The report's figures as data, rendered to SVG and PNG by plotters.
//!
//! A [`Figure`] is one or more [`Panel`]s of [`Series`]; it serialises to `results.json`
//! (every point with its standard error) so it can be re-plotted elsewhere. The drawing
//! conventions are fixed here, once: measurements solid with markers and a 95% band or
//! error bars (±1.96 s.e.), predictions dashed, reference-slope guides dotted grey; the
//! Okabe–Ito palette (colour-blind safe) with one colour and one marker per series name
//! in a figure; the legend to the right of the plots; log axes labelled at every decade
//! (or at 1-2-5 when the range spans less than two decades).

mod axis;

use crate::error::{Error, Result};
use axis::Axis;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::OnceLock;

/// What a series is, which decides how it is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A simulation result: solid line with markers, band or bars of ±1.96 s.e.
    Measured,
    /// Markers with error bars only (no joining line).
    MeasuredPoints,
    /// A theoretical prediction: dashed line.
    Predicted,
    /// A reference-slope guide: dotted grey, labelled at its end.
    Guide,
}

/// One point; `se` is the standard error of `y` when it was measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Point {
    /// Abscissa.
    pub x: f64,
    /// Ordinate.
    pub y: f64,
    /// Standard error of `y`, if measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
}

/// One named series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    /// Legend label (series with the same label in one figure share colour and marker).
    pub name: String,
    /// How it is drawn.
    pub kind: Kind,
    /// The points.
    pub points: Vec<Point>,
}

impl Series {
    /// A measured series from `(x, y, s.e.)`.
    pub fn measured(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        Self::with_se(name, Kind::Measured, points)
    }

    /// Measured points with error bars and no joining line.
    pub fn measured_points(
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64, f64)>,
    ) -> Self {
        Self::with_se(name, Kind::MeasuredPoints, points)
    }

    /// A prediction (no standard error).
    pub fn predicted(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Series {
            name: name.into(),
            kind: Kind::Predicted,
            points: points
                .into_iter()
                .map(|(x, y)| Point { x, y, se: None })
                .collect(),
        }
    }

    /// A straight guide `y = y0 (x/x0)^slope` over `[x0, x1]` (a line on log–log axes).
    pub fn guide(name: impl Into<String>, (x0, y0): (f64, f64), x1: f64, slope: f64) -> Self {
        let y1 = y0 * (x1 / x0).powf(slope);
        Series {
            name: name.into(),
            kind: Kind::Guide,
            points: vec![
                Point {
                    x: x0,
                    y: y0,
                    se: None,
                },
                Point {
                    x: x1,
                    y: y1,
                    se: None,
                },
            ],
        }
    }

    fn with_se(
        name: impl Into<String>,
        kind: Kind,
        points: impl IntoIterator<Item = (f64, f64, f64)>,
    ) -> Self {
        Series {
            name: name.into(),
            kind,
            points: points
                .into_iter()
                .map(|(x, y, se)| Point {
                    x,
                    y,
                    se: se.is_finite().then_some(se),
                })
                .collect(),
        }
    }
}

/// One set of axes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// x-axis label, with units.
    pub x_label: String,
    /// y-axis label, with units.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Names of the x positions 0, 1, … when the x axis is categorical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// The series.
    pub series: Vec<Series>,
}

impl Panel {
    /// A panel with linear axes.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            categories: None,
            series: Vec::new(),
        }
    }

    /// A categorical x axis: the series put their points at x = 0, 1, … of `names`.
    pub fn categories<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.categories = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Logarithmic axes.
    pub fn log(mut self, log_x: bool, log_y: bool) -> Self {
        self.log_x = log_x;
        self.log_y = log_y;
        self
    }

    /// Adds a series.
    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
}

/// One figure: a file stem, its panels and the caption that defines every symbol.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figure {
    /// File stem (`<name>.svg`, `<name>.png`).
    pub name: String,
    /// Title drawn above the panels.
    pub title: String,
    /// Caption for report.md: what is shown and what every symbol means.
    pub caption: String,
    /// Panels, drawn left to right in rows of two.
    pub panels: Vec<Panel>,
}

impl Figure {
    /// A figure with no panels yet.
    pub fn new(name: impl Into<String>, title: impl Into<String>, caption: impl Into<String>) -> Self {
        Figure {
            name: name.into(),
            title: title.into(),
            caption: caption.into(),
            panels: Vec::new(),
        }
    }

    /// Adds a panel.
    pub fn with(mut self, panel: Panel) -> Self {
        self.panels.push(panel);
        self
    }

    /// Pixel size: one panel 960×540; two side by side 1280×540; four 1280×960.
    fn size(&self) -> (u32, u32) {
        match self.panels.len() {
            0 | 1 => (960, 540),
            2 => (1280, 540),
            _ => (1280, 960),
        }
    }

    /// The figure as an SVG document.
    ///
    /// # Errors
    /// [`Error::Io`] naming the figure if drawing fails (e.g. no font for the text).
    pub fn svg(&self) -> Result<String> {
        font()?;
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, self.size()).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| self.error(e))?;
        }
        Ok(text)
    }

    /// The figure as a PNG file (8-bit RGB).
    ///
    /// # Errors
    /// [`Error::Io`] naming the figure if drawing or encoding fails.
    pub fn png(&self) -> Result<Vec<u8>> {
        font()?;
        let (w, h) = self.size();
        let mut rgb = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| self.error(e))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| self.error(e))?;
        writer.write_image_data(&rgb).map_err(|e| self.error(e))?;
        writer.finish().map_err(|e| self.error(e))?;
        Ok(out)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Io {
            path: format!("{}.svg/.png", self.name),
            message: format!("drawing the figure failed: {e}"),
        }
    }

    /// The distinct measured/predicted series names, in order of appearance.
    fn legend(&self) -> Vec<(&str, Kind)> {
        let mut seen: Vec<(&str, Kind)> = Vec::new();
        for s in self.panels.iter().flat_map(|p| &p.series) {
            if s.kind != Kind::Guide && !seen.iter().any(|(n, _)| *n == s.name) {
                seen.push((&s.name, s.kind));
            }
        }
        seen
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let e = |err| self.error(err);
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let root = root
            .titled(&self.title, (FONT, 22).into_font())
            .map_err(|x| e(x.to_string()))?;
        let (w, _) = root.dim_in_pixel();
        let legend_width = 300.min(w / 3);
        let (plots, legend) = root.split_horizontally((w - legend_width) as i32);
        let rows = self.panels.len().div_ceil(2).max(1);
        let cols = if self.panels.len() > 1 { 2 } else { 1 };
        let areas = plots.split_evenly((rows, cols));
        let names = self.legend();
        let style_of = |name: &str| names.iter().position(|(n, _)| *n == name).unwrap_or(0);
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(area, panel, &style_of).map_err(e)?;
        }
        draw_legend(&legend, &names).map_err(e)?;
        Ok(())
    }
}

/// The font family every text uses (registered from a TrueType file, see [`font`]).
const FONT: &str = "sans-serif";

/// Okabe & Ito (2008), "Color universal design": blue, vermillion, bluish green,
/// reddish purple, orange, sky blue, black; then Paul Tol's muted wine, olive and
/// indigo (yellow is left out: it vanishes on white).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(136, 34, 85),
    RGBColor(153, 153, 51),
    RGBColor(51, 34, 136),
];

const GUIDE: RGBColor = RGBColor(110, 110, 110);

/// Marker shapes, one per series: vertices of a polygon of radius `r` (pixels).
fn marker(index: usize, r: i32) -> Vec<(i32, i32)> {
    let polygon = |n: usize, phase: f64, radius: f64| -> Vec<(i32, i32)> {
        (0..n)
            .map(|k| {
                let a = phase + std::f64::consts::TAU * k as f64 / n as f64;
                (
                    (radius * a.cos()).round() as i32,
                    (radius * a.sin()).round() as i32,
                )
            })
            .collect()
    };
    let r = f64::from(r);
    match index % 7 {
        0 => polygon(16, 0.0, r),                                // circle
        1 => polygon(4, std::f64::consts::FRAC_PI_4, r * 1.25),  // square
        2 => polygon(3, -std::f64::consts::FRAC_PI_2, r * 1.3),  // triangle up
        3 => polygon(4, 0.0, r * 1.35),                          // diamond
        4 => polygon(3, std::f64::consts::FRAC_PI_2, r * 1.3),   // triangle down
        5 => polygon(5, -std::f64::consts::FRAC_PI_2, r * 1.25), // pentagon
        _ => polygon(6, 0.0, r * 1.2),                           // hexagon
    }
}

/// Registers a TrueType font for the figure text once: `$NOETHER_SDE_FONT`, else what
/// `fc-match sans-serif` names, else DejaVu Sans or Liberation Sans at the usual paths.
///
/// # Errors
/// [`Error::Io`] if no usable font file is found.
pub fn font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let mut candidates: Vec<std::path::PathBuf> = Vec::new();
            if let Some(p) = std::env::var_os("NOETHER_SDE_FONT") {
                candidates.push(p.into());
            }
            if let Ok(out) = std::process::Command::new("fc-match")
                .args(["--format=%{file}", "sans-serif:style=Book"])
                .output()
            {
                let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if out.status.success() && !path.is_empty() {
                    candidates.push(path.into());
                }
            }
            for p in [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/Library/Fonts/Arial.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
            ] {
                candidates.push(p.into());
            }
            for path in &candidates {
                let Ok(bytes) = std::fs::read(path) else { continue };
                // registered once for the life of the process
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
            Err(
                "no TrueType font found for the figure text: install one (e.g. Debian's \
                 fonts-dejavu-core) or point NOETHER_SDE_FONT at a .ttf file"
                    .to_string(),
            )
        })
        .clone()
        .map_err(|message| Error::Io {
            path: "figures".into(),
            message,
        })
}

type Style<'a> = &'a dyn Fn(&str) -> usize;

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    style_of: Style<'_>,
) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let band = |p: &Point| p.se.map_or((p.y, p.y), |s| (p.y - 1.96 * s, p.y + 1.96 * s));
    let xs = match &panel.categories {
        Some(names) => Axis::categorical(names),
        None => Axis::new(
            panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.x)),
            panel.log_x,
        ),
    };
    let ys = Axis::new(
        panel.series.iter().flat_map(|s| {
            s.points.iter().flat_map(move |p| {
                let (lo, hi) = band(p);
                // a band reaching below zero on a log axis is clipped, not followed
                let lo = if panel.log_y && lo <= 0.0 { p.y } else { lo };
                [p.y, lo, hi]
            })
        }),
        panel.log_y,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 17))
        .margin(10)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(xs.coord(), ys.coord())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&|c| xs.label(*c))
        .y_label_formatter(&|c| ys.label(*c))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| err(&e))?;
    let (y_floor, y_ceil) = ys.range;
    let clamp = |v: f64| v.clamp(y_floor, y_ceil);
    let under = |s: &&Series| matches!(s.kind, Kind::Predicted | Kind::Guide);
    let ordered = panel
        .series
        .iter()
        .filter(under)
        .chain(panel.series.iter().filter(|s| !under(s)));
    for s in ordered {
        let idx = style_of(&s.name);
        let color = PALETTE[idx % PALETTE.len()];
        let pts: Vec<&Point> = s
            .points
            .iter()
            .filter(|p| {
                p.x.is_finite()
                    && p.y.is_finite()
                    && (!panel.log_x || p.x > 0.0)
                    && (!panel.log_y || p.y > 0.0)
            })
            .collect();
        let xy: Vec<(f64, f64)> = pts.iter().map(|p| (xs.at(p.x), ys.at(p.y))).collect();
        let lo_hi = |p: &Point| {
            let (lo, hi) = band(p);
            let lo = if panel.log_y && lo <= 0.0 {
                y_floor
            } else {
                clamp(ys.at(lo))
            };
            (lo, clamp(ys.at(hi)))
        };
        match s.kind {
            Kind::Measured | Kind::MeasuredPoints => {
                let measured_se = pts.iter().any(|p| p.se.is_some_and(|v| v > 0.0));
                if measured_se && s.kind == Kind::Measured && pts.len() > 12 {
                    // a shaded 95% band along a dense curve
                    let mut poly: Vec<(f64, f64)> = pts.iter().map(|p| (xs.at(p.x), lo_hi(p).1)).collect();
                    poly.extend(pts.iter().rev().map(|p| (xs.at(p.x), lo_hi(p).0)));
                    chart
                        .draw_series(std::iter::once(Polygon::new(poly, color.mix(0.18).filled())))
                        .map_err(|e| err(&e))?;
                } else if measured_se {
                    // 95% error bars with caps
                    for p in &pts {
                        let (lo, hi) = lo_hi(p);
                        let x = xs.at(p.x);
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((x, lo))
                                    + PathElement::new(vec![(-4, 0), (4, 0)], color.stroke_width(1)),
                            ))
                            .map_err(|e| err(&e))?;
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((x, hi))
                                    + PathElement::new(vec![(-4, 0), (4, 0)], color.stroke_width(1)),
                            ))
                            .map_err(|e| err(&e))?;
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(x, lo), (x, hi)],
                                color.stroke_width(1),
                            )))
                            .map_err(|e| err(&e))?;
                    }
                }
                if s.kind == Kind::Measured {
                    chart
                        .draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
                        .map_err(|e| err(&e))?;
                }
                let shape = marker(idx, 5);
                chart
                    .draw_series(
                        xy.iter()
                            .map(|&c| EmptyElement::at(c) + Polygon::new(shape.clone(), color.filled())),
                    )
                    .map_err(|e| err(&e))?;
            }
            Kind::Predicted => {
                chart
                    .draw_series(DashedLineSeries::new(xy, 9, 6, color.stroke_width(2)))
                    .map_err(|e| err(&e))?;
            }
            Kind::Guide => {
                if let Some(&end) = xy.last() {
                    chart
                        .draw_series(DashedLineSeries::new(xy, 2, 4, GUIDE.stroke_width(2)))
                        .map_err(|e| err(&e))?;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            s.name.clone(),
                            end,
                            (FONT, 14)
                                .into_font()
                                .color(&GUIDE)
                                .pos(Pos::new(HPos::Left, VPos::Center)),
                        )))
                        .map_err(|e| err(&e))?;
                }
            }
        }
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[(&str, Kind)],
) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut y = 50;
    for (i, (name, kind)) in names.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let sample = |dash: bool| -> Vec<Vec<(i32, i32)>> {
            if dash {
                vec![
                    vec![(8, y), (17, y)],
                    vec![(23, y), (32, y)],
                    vec![(38, y), (44, y)],
                ]
            } else {
                vec![vec![(8, y), (44, y)]]
            }
        };
        let dashed = *kind == Kind::Predicted;
        if *kind != Kind::MeasuredPoints {
            for seg in sample(dashed) {
                area.draw(&PathElement::new(seg, color.stroke_width(2)))
                    .map_err(|e| err(&e))?;
            }
        }
        if matches!(kind, Kind::Measured | Kind::MeasuredPoints) {
            area.draw(&(EmptyElement::at((26, y)) + Polygon::new(marker(i, 5), color.filled())))
                .map_err(|e| err(&e))?;
        }
        // long labels wrap once at a space near the middle
        let text = wrap(name, 30);
        for (k, line) in text.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (52, y + 16 * k as i32),
                (FONT, 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(|e| err(&e))?;
        }
        y += 10 + 17 * text.len() as i32;
    }
    Ok(())
}

/// Splits `s` at spaces into lines of at most about `width` characters (two at most).
fn wrap(s: &str, width: usize) -> Vec<String> {
    if s.chars().count() <= width {
        return vec![s.to_string()];
    }
    let cut = s
        .char_indices()
        .filter(|(i, c)| *c == ' ' && s[..*i].chars().count() <= width)
        .map(|(i, _)| i)
        .next_back();
    match cut {
        Some(i) => vec![s[..i].to_string(), s[i + 1..].to_string()],
        None => vec![s.to_string()],
    }
}
