//! Progressive flattening, warmup and sharpening (THEORY §6): above 2/sharpness plain SGD
//! diverges; a linear warmup lets the Noether flow flatten the valley first; matrix
//! factorisation with anisotropic noise sharpens towards its equilibrium.

use super::{interval, Claim, Context, Family, Outcome, Z4};
use crate::analysis::stats::binomial_interval;
use crate::analysis::warmup::{matrix_factorization_sharpening, scalar_factorization_warmup, WarmupConfig};
use crate::error::Result;
use crate::models::ScalarFactorization;
use crate::report::figures::{Figure, Panel, Series};

/// The family.
pub const FAMILY: Family = Family {
    name: "warmup",
    summary: "progressive flattening, warmup and sharpening (THEORY §6)",
    run,
};

fn run(cx: &Context) -> Result<Outcome> {
    let size = cx.size;
    let mut out = Outcome::default();
    let w = scalar_factorization_warmup(&WarmupConfig {
        paths: size.warmup_paths,
        ..Default::default()
    })?;
    // "nearly all" against exact binomial 99.99% intervals of a 90% and a 5% rate
    let [_, above] = binomial_interval(0.9, w.paths as usize, 0.9999)?;
    let [below, _] = binomial_interval(0.05, w.paths as usize, 0.9999)?;
    out.claim(Claim::new(
        "η > 2/sharpness(θ₀): plain SGD diverges",
        format!(
            "η = {} > {:.3}; > 90% of paths (fraction > {above:.3})",
            w.eta, w.critical_eta_predicted
        ),
        format!("{}/{} diverged", w.diverged_constant, w.paths),
        w.diverged_fraction_constant() > above,
    ));
    out.claim(Claim::new(
        "warmup lets the Noether flow flatten first",
        format!("same final η stable: < 5% diverge (fraction < {below:.3})"),
        format!(
            "{}/{} diverged; final C {:.1e} ± {:.1e}",
            w.diverged_warmup, w.paths, w.final_charge.mean, w.final_charge.std_error
        ),
        w.diverged_fraction_warmup() < below,
    ));
    let first = w.sharpness_trace.first().map(|p| p.1).unwrap_or(f64::NAN);
    let last = w.sharpness_trace.last().map(|p| p.1).unwrap_or(f64::NAN);
    out.claim(Claim::new(
        "progressive flattening: sharpness → 4|v| as |C| → 0",
        format!("{:.2} → ≈{}", first, w.balanced_sharpness),
        format!("{first:.2} → {last:.2}"),
        last < 0.5 * first
            && ScalarFactorization::new(1.0, 1.0)?.valley_sharpness(w.final_charge.mean)
                < 1.1 * w.balanced_sharpness,
    ));
    let sh = matrix_factorization_sharpening(0.02, 2, 100.0, 2 * size.sde_paths.max(16), 5)?;
    out.claim(Claim::new(
        "progressive sharpening: matrix factorisation, anisotropic noise",
        format!(
            "{:.3} → {:.3} (equilibrium); rise > 4 s.e.",
            sh.sharpness_start, sh.sharpness_equilibrium
        ),
        format!("late mean {}", interval(&sh.late_mean)),
        sh.late_mean.mean - sh.sharpness_start > Z4 * sh.late_mean.std_error,
    ));
    let t_end = w.eta_trace.last().map_or(0.0, |p| p.0);
    let sh_end = sh.trace.last().map_or(0.0, |p| p.0);
    out.figures.push(
        Figure::new(
            "sharpness",
            "Sharpness: flattening under warmup, sharpening under anisotropic noise",
            "Left: scalar factorisation (v = 1, σ = 1, batch B = 16) from the valley point with \
             charge C = u² − w² = 8, trained by SGD with a linear warmup of the learning rate \
             η(t) from 0.005 to 0.35 over t ∈ [0, 100]. The sharpness λ_max(∇²L), the top \
             eigenvalue of the loss Hessian, falls (progressive flattening, the Noether flow \
             shrinking |C|) towards the balanced value 4|v| before η(t) reaches its final value; \
             SGD is stable while the sharpness stays below 2/η(t). Right: matrix factorisation \
             (d_in = 4, h = 3, d_out = 2) with anisotropic noise, SGD at η = 0.02, B = 2 from \
             the isotropically balanced minimum: the sharpness rises towards its noise \
             equilibrium (progressive sharpening). Time t = kη after k steps. Solid: ensemble \
             means with 95% bands (±1.96 s.e. over paths; left, the surviving paths among \
             the first 20); dashed: reference levels.",
        )
        .with(
            Panel::new("flattening under warmup", "time t = kη (SDE time units)", "sharpness λ_max(∇²L)")
                .log(false, true)
                .with(Series::measured(
                    "sharpness, warmup SGD",
                    w.sharpness_trace
                        .iter()
                        .zip(&w.sharpness_std_error)
                        .map(|(&(t, s), &se)| (t, s, se)),
                ))
                .with(Series::predicted(
                    "stability limit 2/η(t)",
                    w.eta_trace.iter().map(|&(t, e)| (t, 2.0 / e)),
                ))
                .with(Series::predicted(
                    "balanced sharpness 4|v|",
                    [(0.0, w.balanced_sharpness), (t_end, w.balanced_sharpness)],
                )),
        )
        .with(
            Panel::new(
                "sharpening, matrix factorisation",
                "time t = kη (SDE time units)",
                "sharpness λ_max(∇²L)",
            )
            .with(Series::measured(
                "sharpness, SGD (matrix factorisation)",
                sh.trace.iter().map(|(t, m)| (*t, m.mean, m.std_error)),
            ))
            .with(Series::predicted(
                "sharpness at the start",
                [(0.0, sh.sharpness_start), (sh_end, sh.sharpness_start)],
            ))
            .with(Series::predicted(
                "sharpness at the noise equilibrium",
                [(0.0, sh.sharpness_equilibrium), (sh_end, sh.sharpness_equilibrium)],
            )),
        ),
    );
    out.result("warmup", &w);
    out.result("sharpening", &sh);
    Ok(out)
}
