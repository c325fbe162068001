//! The two timescales of SGD on scalar factorisation and their η/B scaling (THEORY §5):
//! the excess risk relaxes at the fast rate 2P, the charge at the slow rate κ, and
//! slow/fast ∝ η/B.

use super::{mean_curve, Claim, Context, Family, Outcome};
use crate::analysis::timescales::{timescale_scaling, Process, TimescaleConfig, TimescalePoint};
use crate::error::Result;
use crate::models::ScalarFactorization;
use crate::report::figures::{Figure, Panel, Series};
use crate::sgd::SgdConfig;
use nalgebra::DVector;

/// The family.
pub const FAMILY: Family = Family {
    name: "timescales",
    summary: "the two timescales and their η/B scaling (THEORY §5)",
    run,
};

fn run(cx: &Context) -> Result<Outcome> {
    let size = cx.size;
    let mut out = Outcome::default();
    let tcfg = TimescaleConfig {
        paths: size.timescale_paths,
        ..Default::default()
    };
    let study = timescale_scaling(&tcfg, &[0.1, 0.05, 0.025, 0.0125], 8, &[1, 2, 4, 8], 0.0125)?;
    let (se, sb) = (&study.slope_eta, &study.slope_batch);
    out.claim(Claim::new(
        "timescale ratio slow/fast ∝ η (SDE, B = 8)",
        "slope 1 (band [0.8, 1.2])",
        format!("{:.3} [{:.3}, {:.3}]", se.slope, se.ci_low, se.ci_high),
        0.8 <= se.ci_low && se.ci_high <= 1.2,
    ));
    out.claim(Claim::new(
        "timescale ratio slow/fast ∝ 1/B (SGD, η = 0.0125)",
        "slope −1 (band [−1.2, −0.8])",
        format!("{:.3} [{:.3}, {:.3}]", sb.slope, sb.ci_low, sb.ci_high),
        -1.2 <= sb.ci_low && sb.ci_high <= -0.8,
    ));
    let sde_pts: Vec<&TimescalePoint> = study.points.iter().filter(|p| p.process == Process::Sde).collect();
    let sgd_pts: Vec<&TimescalePoint> = study.points.iter().filter(|p| p.process == Process::Sgd).collect();
    // 4 standard errors per rate (8 rates: family-wise false alarm < 1e-3); a 95%
    // interval per rate would fail one of eight about a third of the time by chance
    let z = 4.0;
    let ok = |p: &&&TimescalePoint| p.fast.agrees_within(z) && p.slow.agrees_within(z);
    let worst = sde_pts
        .iter()
        .flat_map(|p| [p.fast.z_score().abs(), p.slow.z_score().abs()])
        .fold(0.0, f64::max);
    out.claim(Claim::new(
        "SDE fast (2P) and slow (κ) rates as predicted",
        "each within 4 bootstrap s.e.",
        format!(
            "{}/{} points agree (largest |z| {worst:.2})",
            sde_pts.iter().filter(ok).count(),
            sde_pts.len()
        ),
        sde_pts.iter().all(|p| ok(&p)),
    ));
    out.figures.push(scaling_figure(&sde_pts, &sgd_pts));

    // loss and charge on a log-time axis
    let model = ScalarFactorization::new(1.0, 1.0)?;
    let off = ScalarFactorization::new(2.0, 1.0)?.valley_point(2.0); // uw = 2: off the valley
    let log_times: Vec<f64> = (0..=36).map(|k| 0.05 * 10f64.powf(k as f64 / 10.0)).collect();
    let cfg = SgdConfig::new(0.05, 4);
    let risk = |m: &ScalarFactorization, x: &DVector<f64>| m.residual(x).powi(2);
    let charge = |_: &ScalarFactorization, x: &DVector<f64>| ScalarFactorization::charge(x);
    let loss = mean_curve(&model, cfg, &off, (&log_times, size.paths / 2, 14), None, risk)?;
    let ch = mean_curve(&model, cfg, &off, (&log_times, size.paths / 2, 14), None, charge)?;
    let c0 = ScalarFactorization::charge(&off);
    let a0_sq = model.residual(&off).powi(2);
    out.figures.push(
        Figure::new(
            "two_timescales",
            "SGD: the excess risk falls fast, the charge relaxes slowly (η = 0.05, B = 4)",
            "Two timescales of SGD on scalar factorisation (v = 1, σ = 1, learning rate \
             η = 0.05, batch B = 4), started off the valley at uw = 2 with C₀ = u² − w² = 2. \
             a = uw − v is the residual, so a² is the excess risk L − σ²; a(0) and C(0) are \
             the starting values. Time t = kη after k steps (log axis). The excess risk relaxes \
             at the fast rate 2P, the charge C at the slow rate κ = O(ησ²/B) (THEORY §5). \
             Ensemble means with 95% bands (±1.96 s.e. over paths).",
        )
        .with(
            Panel::new("relaxation on two timescales", "time t = kη (SDE time units)", "relative value")
                .log(true, false)
                .with(Series::measured(
                    "excess risk a²/a(0)²",
                    loss.iter().map(|&(t, v, s)| (t, v / a0_sq, s / a0_sq)),
                ))
                .with(Series::measured(
                    "charge C/C(0)",
                    ch.iter().map(|&(t, v, s)| (t, v / c0, s / c0)),
                )),
        ),
    );
    out.result("timescales", &study);
    Ok(out)
}

/// `(x, slow/fast, s.e.)`, the s.e. of the ratio by the delta method from the two
/// bootstrap standard errors.
fn ratio(p: &TimescalePoint, x: f64) -> (f64, f64, f64) {
    let r = p.ratio();
    let rel = (p.slow.standard_error() / p.slow.rate).hypot(p.fast.standard_error() / p.fast.rate);
    (x, r, r.abs() * rel)
}

fn scaling_figure(sde: &[&TimescalePoint], sgd: &[&TimescalePoint]) -> Figure {
    let predicted = |p: &TimescalePoint| p.slow.predicted / p.fast.predicted;
    Figure::new(
        "timescale_scaling",
        "The ratio of the slow to the fast rate scales like η/B",
        "Scaling of the timescale ratio on scalar factorisation (v = 1, σ = 1): the slow rate κ \
         (the charge's relaxation) over the fast rate 2P (the excess risk's), both fitted \
         from ensembles; left against the learning rate η for the SDE at batch B = 8, right \
         against the batch size B for discrete SGD at η = 0.0125. Markers: measured ratios \
         with 95% error bars (±1.96 s.e., the rates' bootstrap s.e. combined by the delta \
         method); dashed: the predicted ratio of THEORY §5 (∝ η/B).",
    )
    .with(
        Panel::new("against η (SDE, B = 8)", "learning rate η", "κ / 2P (slow rate / fast rate)")
            .log(true, true)
            .with(Series::measured_points("measured", sde.iter().map(|p| ratio(p, p.eta))))
            .with(Series::predicted(
                "predicted (THEORY §5)",
                sde.iter().map(|p| (p.eta, predicted(p))),
            )),
    )
    .with(
        Panel::new("against B (SGD, η = 0.0125)", "batch size B", "κ / 2P (slow rate / fast rate)")
            .log(true, true)
            .with(Series::measured_points(
                "measured",
                sgd.iter().map(|p| ratio(p, p.batch as f64)),
            ))
            .with(Series::predicted(
                "predicted (THEORY §5)",
                sgd.iter().map(|p| (p.batch as f64, predicted(p))),
            )),
    )
}
