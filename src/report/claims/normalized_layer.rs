//! A normalised layer's weight-decay equilibrium (THEORY §6): under scale invariance and
//! weight decay γ, ‖θ‖² settles where the Noether flow's noise growth balances the decay.

use super::{interval, Claim, Context, Family, Outcome};
use crate::analysis::fixed_points::default_normalized_linear_norm;
use crate::error::Result;
use crate::report::figures::{Figure, Panel, Series};

/// The family.
pub const FAMILY: Family = Family {
    name: "normalized_layer",
    summary: "a normalised layer's weight-decay equilibrium (THEORY §6)",
    run,
};

fn run(cx: &Context) -> Result<Outcome> {
    let mut out = Outcome::default();
    let nl = default_normalized_linear_norm(cx.size.paths / 4)?;
    let gap = nl.sde.mean / nl.predicted - 1.0;
    out.claim(Claim::new(
        "normalised layer: ‖θ‖² → sqrt(η TrΣ/(4γB))",
        format!("{:.4} (+ O(η/‖θ‖²) ≲ 10%)", nl.predicted),
        format!("SGD {}; SDE {}", interval(&nl.sgd), interval(&nl.sde)),
        (0.0..0.1).contains(&gap)
            && (nl.sgd.mean - nl.sde.mean).abs() < 4.0 * (nl.sgd.std_error.hypot(nl.sde.std_error)),
    ));
    let span = [-0.5, 1.5];
    out.figures.push(
        Figure::new(
            "normalized_layer",
            "Normalised layer: the weight-decay equilibrium of ‖θ‖²",
            "A scale-invariant (normalised) linear layer trained with weight decay γ = 0.01 \
             (learning rate η = 0.05, batch B = 4, 256 samples, time T = 60): the equilibrium \
             of ‖θ‖², the squared norm of the weights, which the Noether flow's noise growth \
             and the decay balance. Markers: ensemble means of discrete SGD and of its SDE \
             with 95% error bars (±1.96 s.e. over paths); dashed: the leading-order prediction \
             sqrt(η TrΣ/(4γB)) of THEORY §6 (TrΣ the trace of the gradient-noise covariance \
             at the equilibrium direction) and that prediction +10%, the O(η/‖θ‖²) band the \
             verdict allows.",
        )
        .with(
            Panel::new("equilibrium ‖θ‖²", "process", "‖θ‖² at T = 60")
                .categories(["SGD", "SDE"])
                .with(Series::measured_points("SGD", [(0.0, nl.sgd.mean, nl.sgd.std_error)]))
                .with(Series::measured_points("SDE", [(1.0, nl.sde.mean, nl.sde.std_error)]))
                .with(Series::predicted(
                    "prediction sqrt(η TrΣ/(4γB))",
                    span.map(|x| (x, nl.predicted)),
                ))
                .with(Series::predicted(
                    "prediction + 10% (verdict band)",
                    span.map(|x| (x, 1.1 * nl.predicted)),
                )),
        ),
    );
    out.result("normalized_linear", &nl);
    Ok(out)
}
