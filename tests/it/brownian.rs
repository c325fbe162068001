//! Brownian paths: exact coarsening, bridge refinement, Lévy-area moments, value stability.

use crate::common::{moments, ROUNDING, Z_4};
use noether_sde::prelude::*;

#[test]
fn refine_then_coarsen_is_the_identity() {
    let seeds = SeedTree::new(1);
    let grid = BrownianGrid::sample(&seeds, 3, 2, 0.0, 1.0, 16, None).unwrap();
    let mut rng = seeds.rng(3, Stream::Bridge);
    let fine = grid.refine(&mut rng);
    assert_eq!(fine.steps(), 32);
    assert_eq!(fine.coarsen().unwrap(), grid);
    assert!(BrownianGrid::sample(&seeds, 0, 1, 0.0, 1.0, 3, None)
        .unwrap()
        .coarsen()
        .is_err());
}

#[test]
fn stream_and_grid_draw_the_same_increments() {
    let seeds = SeedTree::new(2);
    let grid = BrownianGrid::sample(&seeds, 5, 3, 0.0, 1.0, 8, None).unwrap();
    let mut stream = IncrementStream::new(&seeds, 5, 3);
    let mut reader = grid.path();
    let (mut a, mut b) = (Increment::new(3), Increment::new(3));
    a.h = 0.125;
    b.h = 0.125;
    for _ in 0..8 {
        stream.next(&mut a).unwrap();
        reader.next(&mut b).unwrap();
        assert!((&a.dw - &b.dw).amax() < ROUNDING);
    }
    assert!(reader.next(&mut b).is_err(), "an exhausted grid must say so");
}

/// Brownian-bridge midpoints: the half-step increments have variance h/2 and are
/// uncorrelated (tested on 20000 bridges at 4 s.e.).
#[test]
fn bridge_midpoints_have_the_right_law() {
    let seeds = SeedTree::new(3);
    let (mut first, mut prod) = (Vec::new(), Vec::new());
    for p in 0..20_000u64 {
        let grid = BrownianGrid::sample(&seeds, p, 1, 0.0, 1.0, 1, None).unwrap();
        let fine = grid.refine(&mut seeds.rng(p, Stream::Bridge));
        let d1 = fine.w(1)[0];
        let d2 = fine.w(2)[0] - fine.w(1)[0];
        first.push(d1);
        prod.push(d1 * d2);
    }
    let (_, var, _, se_var) = moments(&first);
    assert_within_se!(var, 0.5, se_var, Z_4);
    let (cov, _, se_cov, _) = moments(&prod);
    assert_within_se!(cov, 0.0, se_cov, Z_4);
}

/// `E[A₁₂²] = h²/4` and, given the increments, `Var(A₁₂ | ΔW) = (h²/12)(1 + (ΔW₁² + ΔW₂²)/h)`:
/// checked through `E[A² / (1 + |ΔW|²/h)] = h²/12`. Wiktorsson's method is accurate
/// at p = 1; the plain Fourier truncation at p = 1 misses `a_1/(π²/6) = 39%` of the
/// conditional variance and is rejected.
#[test]
fn levy_area_second_moments() {
    let h = 0.5;
    let seeds = SeedTree::new(4);
    let sample = |method: LevyMethod| {
        let levy = LevyArea::new(2, 1, method).unwrap();
        let mut path = IncrementStream::new(&seeds, 0, 2)
            .with_levy_area(&seeds, 0, levy)
            .unwrap();
        let mut inc = Increment::with_area(2);
        inc.h = h;
        let mut scaled = Vec::new();
        for _ in 0..40_000 {
            path.next(&mut inc).unwrap();
            let a = inc.area.as_ref().unwrap();
            assert!((a[(0, 1)] + a[(1, 0)]).abs() < ROUNDING && a[(0, 0)].abs() < ROUNDING);
            scaled.push(a[(0, 1)].powi(2) / (1.0 + inc.dw.norm_squared() / h));
        }
        moments(&scaled)
    };
    let (m, _, se, _) = sample(LevyMethod::Wiktorsson);
    assert_within_se!(m, h * h / 12.0, se, Z_4);
    let (m, _, se, _) = sample(LevyMethod::Fourier);
    assert_within_se!(m, h * h / 12.0 * (6.0 / std::f64::consts::PI.powi(2)), se, Z_4);
    assert_rejects!(m, h * h / 12.0, se, Z_4);
}

/// Chen's relation makes coarse areas consistent: the area over two fine steps equals
/// the sum of the fine areas plus `½(ΔW¹₁ΔW²₂ − ΔW¹₂ΔW²₁)`; and the coarse areas have
/// `E A² = (2h)²/4`.
#[test]
fn coarsened_areas_follow_chen() {
    let seeds = SeedTree::new(5);
    let mut levy = LevyArea::new(2, 8, LevyMethod::Wiktorsson).unwrap();
    let mut coarse_sq = Vec::new();
    for p in 0..20_000u64 {
        let fine = BrownianGrid::sample(&seeds, p, 2, 0.0, 1.0, 2, Some(&mut levy)).unwrap();
        let coarse = fine.coarsen().unwrap();
        let (mut a, mut b, mut c) = (
            Increment::with_area(2),
            Increment::with_area(2),
            Increment::with_area(2),
        );
        a.h = 0.5;
        b.h = 0.5;
        c.h = 1.0;
        let mut r = fine.path();
        r.next(&mut a).unwrap();
        r.next(&mut b).unwrap();
        coarse.path().next(&mut c).unwrap();
        let chen = a.area.as_ref().unwrap()[(0, 1)]
            + b.area.as_ref().unwrap()[(0, 1)]
            + 0.5 * (a.dw[0] * b.dw[1] - a.dw[1] * b.dw[0]);
        assert!((c.area.as_ref().unwrap()[(0, 1)] - chen).abs() < ROUNDING);
        coarse_sq.push(chen * chen);
    }
    let (m, _, se, _) = moments(&coarse_sq);
    assert_within_se!(m, 0.25, se, Z_4);
}

#[test]
fn truncation_rule_and_error_bound() {
    // p = ⌈√(5m²(m−1)/(24π²h))⌉ makes Wiktorsson's bound at most h³.
    for (m, h) in [(2, 1e-2), (3, 1e-3), (10, 1e-3)] {
        let levy = LevyArea::for_step(m, h).unwrap();
        assert!(levy.wiktorsson_error_bound(h) <= h * h * h * (1.0 + 1e-12));
    }
    assert!(LevyArea::new(2, 0, LevyMethod::Fourier).is_err());
    assert!(LevyArea::for_step(2, 0.0).is_err());
}

/// Value stability: the first increments of seed 42, path 0, are pinned. Changing them
/// changes every published number and is a changelog event.
#[test]
fn value_stability_of_the_first_increments() {
    let mut path = IncrementStream::new(&SeedTree::new(42), 0, 2);
    let mut inc = Increment::new(2);
    inc.h = 1.0;
    let mut got = Vec::new();
    for _ in 0..2 {
        path.next(&mut inc).unwrap();
        got.extend(inc.dw.iter().copied());
    }
    for (g, p) in got.iter().zip(PINNED_INCREMENTS.iter()) {
        assert_eq!(g.to_bits(), p.to_bits(), "got {got:?}");
    }
}

/// Since 0.2.0 (the 4096-layer ziggurat; CHANGELOG.md); 0.1.0 pinned 0.8343975468437959,
/// −0.514962928147295, 1.40772757311975, 0.46445486122523566 (`rand_distr`'s tables).
const PINNED_INCREMENTS: [f64; 4] = [
    0.9248186155480819,
    -0.5743685239828107,
    0.8712792383057326,
    0.7229660866483522,
];
