//! Axis ranges and ticks for the report's figures: log axes labelled at every decade
//! (1-2-5 marks when fewer than three decades fall inside), linear axes at 1, 2, 2.5 or 5
//! times a power of ten, categorical axes by name; each label once.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// Axis ticks: `(position in plot coordinates, label)`, and the axis range.
pub(super) struct Axis {
    pub(super) range: (f64, f64),
    pub(super) ticks: Vec<f64>,
    pub(super) log: bool,
    pub(super) names: Vec<String>,
}

impl Axis {
    pub(super) fn categorical(names: &[String]) -> Self {
        Axis {
            range: (-0.5, names.len() as f64 - 0.5),
            ticks: (0..names.len()).map(|k| k as f64).collect(),
            log: false,
            names: names.to_vec(),
        }
    }

    pub(super) fn new(values: impl Iterator<Item = f64>, log: bool) -> Self {
        let (mut lo, mut hi) = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = if log { (0.1, 1.0) } else { (0.0, 1.0) };
        }
        if log {
            // a margin so that markers on the extremes are not cut by the frame
            let (lo, hi) = (lo / 1.2, hi * 1.2);
            let (l, h) = (lo.log10(), hi.log10());
            // every decade when three or more fall inside, else 1-2-5 steps
            let mults: &[f64] = if h.floor() - l.ceil() >= 2.0 {
                &[1.0]
            } else {
                &[1.0, 2.0, 5.0]
            };
            let mut marks = Vec::new();
            for d in (l.floor() as i32 - 1)..=(h.ceil() as i32 + 1) {
                for m in mults {
                    marks.push(m * 10f64.powi(d));
                }
            }
            let inside: Vec<f64> = marks.iter().copied().filter(|&m| m >= lo && m <= hi).collect();
            let (lo, hi) = if inside.len() >= 2 {
                (lo, hi)
            } else {
                // too narrow for two marks: widen to the marks around it
                let below = marks.iter().copied().filter(|&m| m <= lo).fold(lo, |_, m| m);
                let above = marks.iter().copied().find(|&m| m >= hi).unwrap_or(hi);
                (below, above)
            };
            let ticks = marks
                .iter()
                .copied()
                .filter(|&m| m >= lo / 1.000_001 && m <= hi * 1.000_001)
                .map(f64::log10)
                .collect();
            Axis {
                range: (lo.log10(), hi.log10()),
                ticks,
                log: true,
                names: Vec::new(),
            }
        } else {
            if hi - lo < 1e-12 * hi.abs().max(1.0) {
                lo -= 0.5 * lo.abs().max(1.0);
                hi += 0.5 * hi.abs().max(1.0);
            }
            let pad = 0.03 * (hi - lo);
            let (lo, hi) = (lo - pad, hi + pad);
            let raw = (hi - lo) / 6.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(10.0 * mag);
            let ticks = (((lo / step).ceil() as i64)..=((hi / step).floor() as i64))
                .map(|k| k as f64 * step)
                .collect();
            Axis {
                range: (lo, hi),
                ticks,
                log: false,
                names: Vec::new(),
            }
        }
    }

    pub(super) fn coord(&self) -> TickRange {
        TickRange {
            lo: self.range.0,
            hi: self.range.1,
            ticks: self.ticks.clone(),
        }
    }

    /// Data value → plot coordinate.
    pub(super) fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(1e-300).log10()
        } else {
            v
        }
    }

    pub(super) fn label(&self, c: f64) -> String {
        if !self.names.is_empty() {
            let k = c.round();
            return if (c - k).abs() < 1e-9 && k >= 0.0 {
                self.names.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            };
        }
        if self.log {
            tick_label(10f64.powf(c))
        } else {
            let step = self.ticks.windows(2).map(|w| w[1] - w[0]).next().unwrap_or(1.0);
            let quarter = if step_has_quarter(step) { 1.0 } else { 0.0 };
            let decimals = (-step.log10().floor() + quarter).max(0.0) as usize;
            let s = format!("{c:.decimals$}");
            if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
                s[1..].to_string()
            } else {
                s
            }
        }
    }
}

/// A linear coordinate with the ticks chosen here (plotters' own key points put labels
/// off the decades of a log axis and can repeat a label).
#[derive(Clone)]
pub(super) struct TickRange {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for TickRange {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn step_has_quarter(step: f64) -> bool {
    let mant = step / 10f64.powf(step.log10().floor());
    (mant - 2.5).abs() < 1e-9
}

/// `0.001`…`5000` in plain decimals, otherwise `1e-5`, `2e6`.
fn tick_label(v: f64) -> String {
    let exp = v.log10().floor();
    let mant = (v / 10f64.powf(exp) * 1e6).round() / 1e6;
    if (-3.0..4.0).contains(&exp) {
        let decimals = (-exp).max(0.0) as usize;
        format!("{v:.decimals$}")
    } else if (mant - 1.0).abs() < 1e-9 {
        format!("1e{exp}")
    } else {
        format!("{mant}e{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_labelled_once_per_decade() {
        let labels = |axis: &Axis| axis.ticks.iter().map(|&t| axis.label(t)).collect::<Vec<_>>();
        // under two decades: 1-2-5 marks, each label once
        let narrow = Axis::new([0.0125, 0.1].into_iter(), true);
        assert_eq!(labels(&narrow), ["0.02", "0.05", "0.1"]);
        // wider: every decade inside the range, nothing else
        let wide = Axis::new([3e-4, 2.0].into_iter(), true);
        assert_eq!(labels(&wide), ["0.001", "0.01", "0.1", "1"]);
        // too narrow for two marks: widened to the marks around the data
        let tight = Axis::new([1.1, 1.6].into_iter(), true);
        assert_eq!(labels(&tight), ["0.5", "1", "2"]);
        let linear = Axis::new([0.0, 120.0].into_iter(), false);
        assert_eq!(labels(&linear), ["0", "25", "50", "75", "100"]);
    }

    #[test]
    fn tick_labels_are_plain_or_exponential() {
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(100.0), "100");
        assert_eq!(tick_label(1e-5), "1e-5");
        assert_eq!(tick_label(2e6), "2e6");
    }
}
