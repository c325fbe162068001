//! The lockstep step itself (THEORY §8): a block of paths advanced by one step of
//! Euler–Maruyama, Milstein, Heun, RK-Milstein or Milstein–Lévy from the block
//! coefficients of a [`BatchSde`], with, per path, the per-path scheme's operations in
//! its order — the fused one-pass kernels for `d = m = 1` and for one noise, the
//! Milstein terms through [`BatchSde::milstein_block`], Milstein–Lévy's through
//! [`BatchSde::derivative_block`] (or the per-path derivative lane by lane), the Lévy
//! areas of the step (`ws.areas`) in `I_(j,k)`, and the layout of the diffusion block. The driver that
//! draws the increments, tests divergence and observes is `super` (`mod.rs`).

use super::*;

pub(super) use crate::sde::batch::{noise_term, Layout};

/// Calls `$body(layout, d)` with the layout (and, for `d = m = 1`, the dimension) as
/// constants in each arm, so that the `#[inline(always)]` step bodies are compiled once
/// per layout with [`noise_term`]'s dispatch and the per-coordinate loop folded away: an
/// SDE reached through `dyn BatchSde` (the route `SdeProblem::new` takes) gets the loops
/// a concrete SDE's monomorphised driver gets (GBM Heun 236.8 → 110 instructions per
/// path-step under callgrind). Same operations in every arm: the same numbers.
macro_rules! specialised {
    ($layout:expr, $d:expr, $body:expr) => {{
        let (layout, d) = ($layout, $d);
        match layout {
            Layout::OneNoise if d == 1 => $body(Layout::OneNoise, 1),
            Layout::OneNoise => $body(Layout::OneNoise, d),
            Layout::Diagonal => $body(Layout::Diagonal, d),
            Layout::Matrix(m) => $body(Layout::Matrix(m), d),
        }
    }};
}

impl<S: BatchSde + ?Sized> LockstepProblem<'_, S> {
    /// Evaluates the scheme's coefficients at the block's states and advances `ws.x` by
    /// one step of size `h` from `t` on the increments `ws.dw`.
    pub(super) fn advance(&self, ws: &mut LockstepWorkspace, n: usize, t: f64, h: f64) -> Result<()> {
        let (d, m, noise) = (self.sde.dim(), self.sde.noise_dim(), self.sde.noise());
        let layout = Layout::of(noise, d, m);
        self.sde.drift_block(t, &ws.x, &mut ws.drift)?;
        self.sde.diffusion_block(t, &ws.x, &mut ws.diffusion)?;
        let dw = &ws.dw;
        match self.scheme {
            LockstepScheme::Milstein => self.milstein_step(ws, n, t, h)?,
            LockstepScheme::EulerMaruyama => {
                if d == 1 && m == 1 {
                    euler_in_place(&mut ws.x, &ws.drift, &ws.diffusion, dw, h);
                } else if m == 1 {
                    let (x, a, b) = (&mut ws.x, &ws.drift, &ws.diffusion);
                    ws.kernel.vectorised(EulerOneNoise { x, a, b, dw, h, d });
                } else {
                    specialised!(layout, d, |layout, d| euler_rows(ws, n, h, layout, d))
                }
            }
            LockstepScheme::Heun => specialised!(layout, d, |layout, d| self.heun(ws, n, t, h, layout, d))?,
            // with or without Lévy areas, as a constant in each compiled body
            LockstepScheme::RkMilstein if self.levy.is_some() => specialised!(layout, d, |layout, d| self
                .rk_milstein(ws, n, [t, h], layout, d, true))?,
            LockstepScheme::RkMilstein => specialised!(layout, d, |layout, d| self.rk_milstein(
                ws,
                n,
                [t, h],
                layout,
                d,
                false
            ))?,
            LockstepScheme::MilsteinLevy => match noise {
                Noise::Commutative | Noise::General => self.milstein_levy(ws, n, t, h, layout)?,
                // the per-path correction's scalar, diagonal and additive forms: Milstein's
                _ => self.milstein_step(ws, n, t, h)?,
            },
        }
        Ok(())
    }

    /// One Milstein step ([`crate::scheme::Milstein::step`]: `euler_update`, then the
    /// terms of `MilsteinWork::add_correction` in its order), the derivative terms
    /// evaluated at the block's states before they move.
    #[inline(always)]
    pub(super) fn milstein_step(&self, ws: &mut LockstepWorkspace, n: usize, t: f64, h: f64) -> Result<()> {
        let (d, m, noise) = (self.sde.dim(), self.sde.noise_dim(), self.sde.noise());
        if ws.ones.len() < n * m {
            ws.ones.resize(n * m, 1.0);
        }
        let (x, a, b, dw) = (&mut ws.x, &ws.drift, &ws.diffusion, &ws.dw);
        match noise {
            Noise::Scalar => {
                let term = &mut ws.correction[..n * d];
                self.sde.milstein_block(t, x, &ws.ones[..n], term)?;
                // out = X + h a + b ΔW;  out += ½(ΔW² − h) L¹b
                for (p, &w) in dw[..n].iter().enumerate() {
                    let coefficient = 0.5 * (w * w - h);
                    for k in p * d..(p + 1) * d {
                        let em = x[k] + h * a[k] + b[k] * w;
                        x[k] = em + coefficient * term[k];
                    }
                }
            }
            Noise::Diagonal => {
                // out = X + h a + b ΔW;  out += ½ ∂b[bΔW]ΔW;  out += (−½h) ∂b[b1]1
                // (nalgebra's `axpy(α, y, 1)` is `α·y·1 + 1·out`, the same sum)
                let along = &mut ws.correction[..n * d];
                self.sde.milstein_block(t, x, &dw[..n * d], along)?;
                let unit = &mut ws.correction_unit[..n * d];
                self.sde.milstein_block(t, x, &ws.ones[..n * d], unit)?;
                for k in 0..n * d {
                    let em = x[k] + h * a[k] + b[k] * dw[k];
                    x[k] = (em + 0.5 * along[k]) + -0.5 * h * unit[k];
                }
            }
            // additive noise (`LockstepProblem::new` admits no other): no derivative term
            _ => {
                let layout = Layout::of(noise, d, m);
                let width = diffusion_width(noise, d, m);
                for p in 0..n {
                    let (bp, wp) = (&b[p * width..(p + 1) * width], &dw[p * m..(p + 1) * m]);
                    for i in 0..d {
                        let k = p * d + i;
                        x[k] = x[k] + h * a[k] + noise_term(layout, bp, wp, i);
                    }
                }
            }
        }
        Ok(())
    }

    /// One stochastic Heun step ([`crate::scheme::Heun::step`]):
    /// `X̃ = X + h a + b ΔW`, `X' = X + ½h(a + ã) + ½(b ΔW + b̃ ΔW)`.
    #[inline(always)]
    fn heun(
        &self,
        ws: &mut LockstepWorkspace,
        n: usize,
        t: f64,
        h: f64,
        layout: Layout,
        d: usize,
    ) -> Result<()> {
        let (m, width) = (layout.noise_dim(d), layout.width(d));
        ws.support.resize(n * d, 0.0);
        ws.drift_p.resize(n * d, 0.0);
        ws.diffusion_p.resize(n * width, 0.0);
        let (x, a, b, dw) = (&ws.x, &ws.drift, &ws.diffusion, &ws.dw);
        for p in 0..n {
            let (bp, wp) = (&b[p * width..(p + 1) * width], &dw[p * m..(p + 1) * m]);
            for i in 0..d {
                let k = p * d + i;
                ws.support[k] = x[k] + h * a[k] + noise_term(layout, bp, wp, i);
            }
        }
        self.sde.drift_block(t + h, &ws.support, &mut ws.drift_p)?;
        self.sde
            .diffusion_block(t + h, &ws.support, &mut ws.diffusion_p)?;
        let (x, a_p, b_p) = (&mut ws.x, &ws.drift_p, &ws.diffusion_p);
        for p in 0..n {
            let (bp, wp) = (&b[p * width..(p + 1) * width], &dw[p * m..(p + 1) * m]);
            let bq = &b_p[p * width..(p + 1) * width];
            for i in 0..d {
                let k = p * d + i;
                let (nb, nq) = (noise_term(layout, bp, wp, i), noise_term(layout, bq, wp, i));
                x[k] = x[k] + 0.5 * h * (a[k] + a_p[k]) + 0.5 * (nb + nq);
            }
        }
        Ok(())
    }

    /// [`Self::rk_milstein`] for one Brownian motion (`Layout::OneNoise`, `d > 1`: the
    /// scalar-factorisation SGD-SDE): the same numbers — each path's
    /// `c = ½ΔW ΔW − ½h` formed once (the general step's `c` and its sum over `j1`,
    /// `0 + c = c`: `c` is never `−0`), `X + h a + b ΔW` and the support in one pass, the
    /// two correction terms in a second — without the general step's per-path slices.
    #[inline(always)]
    fn rk_milstein_one_noise(
        &self,
        ws: &mut LockstepWorkspace,
        n: usize,
        [t, h]: [f64; 2],
        d: usize,
    ) -> Result<()> {
        let sqrt_h = h.sqrt();
        let inv_sqrt_h = 1.0 / sqrt_h;
        ws.next.resize(n * d, 0.0);
        ws.support.resize(n * d, 0.0);
        ws.diffusion_p.resize(n * d, 0.0);
        ws.c.resize(n, 0.0);
        let (x, a, b, dw) = (
            &ws.x[..n * d],
            &ws.drift[..n * d],
            &ws.diffusion[..n * d],
            &ws.dw[..n],
        );
        let rows = x.chunks_exact(d).zip(a.chunks_exact(d)).zip(b.chunks_exact(d));
        let outs = ws.next.chunks_exact_mut(d).zip(ws.support.chunks_exact_mut(d));
        for ((((x, a), b), (next, support)), (&w, c)) in rows.zip(outs).zip(dw.iter().zip(&mut ws.c)) {
            *c = 0.5 * w * w + -0.5 * h;
            for i in 0..d {
                next[i] = x[i] + h * a[i] + b[i] * w;
                // column 0 of b: b applied to the unit vector
                support[i] = x[i] + h * a[i] + sqrt_h * (b[i] * 1.0);
            }
        }
        self.sde.diffusion_block(t, &ws.support, &mut ws.diffusion_p)?;
        let (b, b_p) = (&ws.diffusion[..n * d], &ws.diffusion_p[..n * d]);
        let rows = ws
            .next
            .chunks_exact_mut(d)
            .zip(b.chunks_exact(d).zip(b_p.chunks_exact(d)));
        for ((next, (b, b_p)), &c) in rows.zip(&ws.c[..n]) {
            for i in 0..d {
                next[i] = next[i] + inv_sqrt_h * (b_p[i] * c) + -inv_sqrt_h * (b[i] * c);
            }
        }
        std::mem::swap(&mut ws.x, &mut ws.next);
        Ok(())
    }

    /// One RK-Milstein step ([`crate::scheme::RkMilstein::step`]):
    /// `X' = X + a h + b ΔW + (1/√h) Σ_{j1} [b(Υ_{j1}) − b(X)] c_{j1}` with
    /// `Υ_{j1} = X + a h + b_{j1} √h` and `c_{j1, j2} = ½ ΔW_{j1} ΔW_{j2} + (−½ h if
    /// j1 = j2, else A_{j1 j2})` (the Lévy area `A` on general noise, else `0`), in the
    /// per-path scheme's order (the `Υ` terms one `j1` at a time, then `−b(X) Σ c`).
    #[inline(always)]
    fn rk_milstein(
        &self,
        ws: &mut LockstepWorkspace,
        n: usize,
        [t, h]: [f64; 2],
        layout: Layout,
        d: usize,
        with_areas: bool,
    ) -> Result<()> {
        let (m, width, noise) = (layout.noise_dim(d), layout.width(d), self.sde.noise());
        if layout == Layout::OneNoise && noise != Noise::Additive {
            return self.rk_milstein_one_noise(ws, n, [t, h], d);
        }
        ws.next.resize(n * d, 0.0);
        {
            let (x, a, b, dw) = (&ws.x, &ws.drift, &ws.diffusion, &ws.dw);
            for p in 0..n {
                let (bp, wp) = (&b[p * width..(p + 1) * width], &dw[p * m..(p + 1) * m]);
                for i in 0..d {
                    let k = p * d + i;
                    ws.next[k] = x[k] + h * a[k] + noise_term(layout, bp, wp, i);
                }
            }
        }
        if noise != Noise::Additive {
            let sqrt_h = h.sqrt();
            let inv_sqrt_h = 1.0 / sqrt_h;
            ws.support.resize(n * d, 0.0);
            ws.diffusion_p.resize(n * width, 0.0);
            ws.c.resize(n * m, 0.0);
            ws.c_sum.clear();
            ws.c_sum.resize(n * m, 0.0);
            for j1 in 0..m {
                let (x, a, b, dw) = (&ws.x, &ws.drift, &ws.diffusion, &ws.dw);
                for p in 0..n {
                    let bp = &b[p * width..(p + 1) * width];
                    let wp = &dw[p * m..(p + 1) * m];
                    for i in 0..d {
                        // column j1 of b: b applied to the unit vector e_{j1}
                        let column = unit_column(layout, bp, i, j1, m);
                        let k = p * d + i;
                        ws.support[k] = x[k] + h * a[k] + sqrt_h * column;
                    }
                    let areas = &ws.areas[if with_areas { p * m * m + j1 * m } else { 0 }..];
                    for j2 in 0..m {
                        let area = if with_areas { areas[j2] } else { 0.0 };
                        let i_12 = 0.5 * wp[j1] * wp[j2] + if j1 == j2 { -0.5 * h } else { area };
                        ws.c[p * m + j2] = i_12;
                        ws.c_sum[p * m + j2] += i_12;
                    }
                }
                self.sde.diffusion_block(t, &ws.support, &mut ws.diffusion_p)?;
                for p in 0..n {
                    let bq = &ws.diffusion_p[p * width..(p + 1) * width];
                    let c = &ws.c[p * m..(p + 1) * m];
                    for i in 0..d {
                        let k = p * d + i;
                        ws.next[k] += inv_sqrt_h * noise_term(layout, bq, c, i);
                    }
                }
            }
            for p in 0..n {
                let b = &ws.diffusion[p * width..(p + 1) * width];
                let c = &ws.c_sum[p * m..(p + 1) * m];
                for i in 0..d {
                    let k = p * d + i;
                    ws.next[k] += -inv_sqrt_h * noise_term(layout, b, c, i);
                }
            }
        }
        std::mem::swap(&mut ws.x, &mut ws.next);
        Ok(())
    }
}

impl<S: BatchSde + ?Sized> LockstepProblem<'_, S> {
    /// One Milstein–Lévy step on commutative or general noise
    /// ([`crate::scheme::MilsteinLevy::step`], `MilsteinWork::add_correction`'s general
    /// form): `X' = X + h a + b ΔW`, then for `j = 0, …, m − 1`
    /// `X' += ∂b[b_j] c_j` with `c_{jk} = I_(j,k) = ½ ΔW_j ΔW_k − ½ h δ_{jk} + A_{jk}`
    /// (the Lévy area `A` on general noise only), the derivative at the block's states
    /// before they move: one [`BatchSde::derivative_block`] call per `j` for the block, or
    /// [`crate::sde::Sde::diffusion_derivative`] per path when the SDE has no block form.
    pub(super) fn milstein_levy(
        &self,
        ws: &mut LockstepWorkspace,
        n: usize,
        t: f64,
        h: f64,
        layout: Layout,
    ) -> Result<()> {
        let (d, m, noise) = (self.sde.dim(), self.sde.noise_dim(), self.sde.noise());
        let width = diffusion_width(noise, d, m);
        let with_areas = self.levy.is_some();
        ws.next.resize(n * d, 0.0);
        ws.directions.resize(n * d, 0.0);
        ws.weights.resize(n * m, 0.0);
        ws.terms.resize(n * d, 0.0);
        {
            let (x, a, b, dw) = (&ws.x, &ws.drift, &ws.diffusion, &ws.dw);
            for p in 0..n {
                let (bp, wp) = (&b[p * width..(p + 1) * width], &dw[p * m..(p + 1) * m]);
                for i in 0..d {
                    let k = p * d + i;
                    ws.next[k] = x[k] + h * a[k] + noise_term(layout, bp, wp, i);
                }
            }
        }
        for j in 0..m {
            for p in 0..n {
                let bp = &ws.diffusion[p * width..(p + 1) * width];
                let wp = &ws.dw[p * m..(p + 1) * m];
                for i in 0..d {
                    ws.directions[p * d + i] = unit_column(layout, bp, i, j, m);
                }
                for k in 0..m {
                    // `Increment::iterated_integral(j, k)`
                    let half = 0.5 * wp[j] * wp[k];
                    let symmetric = if j == k { half - 0.5 * h } else { half };
                    ws.weights[p * m + k] = if with_areas && j != k {
                        symmetric + ws.areas[p * m * m + j * m + k]
                    } else {
                        symmetric
                    };
                }
            }
            if self.sde.has_derivative_block() {
                self.sde.derivative_block(
                    t,
                    &ws.x,
                    &ws.directions,
                    &ws.weights,
                    &mut ws.terms,
                    &mut ws.block_scratch,
                )?;
            } else {
                let lane = &mut ws.lane;
                for p in 0..n {
                    lane.x.as_mut_slice().copy_from_slice(&ws.x[p * d..(p + 1) * d]);
                    lane.v
                        .as_mut_slice()
                        .copy_from_slice(&ws.directions[p * d..(p + 1) * d]);
                    lane.c
                        .as_mut_slice()
                        .copy_from_slice(&ws.weights[p * m..(p + 1) * m]);
                    self.sde.diffusion_derivative(
                        t,
                        &lane.x,
                        &lane.v,
                        &lane.c,
                        &mut lane.out,
                        &mut lane.scratch,
                    );
                    ws.terms[p * d..(p + 1) * d].copy_from_slice(lane.out.as_slice());
                }
            }
            for (next, &term) in ws.next.iter_mut().zip(&ws.terms) {
                *next += term;
            }
        }
        std::mem::swap(&mut ws.x, &mut ws.next);
        Ok(())
    }
}

impl<S: BatchSde + ?Sized> LockstepProblem<'_, S> {
    /// One step of a one-dimensional SDE with one noise of the `n` paths on the normals
    /// `ws.normals[row..row + n]` ([`ScalarLanes`]): Euler–Maruyama or Milstein in one
    /// pass (or after the block methods), Heun or RK-Milstein in two where the SDE offers
    /// them (`None` where it does not: the driver's general step). Returns whether every
    /// lane stays finite and within `limit`.
    pub(super) fn one_dim_step(
        &self,
        ws: &mut LockstepWorkspace,
        row: usize,
        n: usize,
        t: f64,
        [h, sqrt_h, limit]: [f64; 3],
    ) -> Result<Option<bool>> {
        let additive = self.sde.noise() == Noise::Additive;
        match self.scheme {
            // RK-Milstein on additive noise is Euler–Maruyama's numbers (no correction)
            LockstepScheme::RkMilstein if additive => {}
            LockstepScheme::Heun | LockstepScheme::RkMilstein => {
                let heun = self.scheme == LockstepScheme::Heun;
                let (kernel, sizes) = (ws.kernel, [h, sqrt_h, limit]);
                if ws.support.len() < n {
                    ws.support.resize(n, 0.0);
                }
                let z = &ws.normals[row..row + n];
                let pass = Pass::First {
                    heun,
                    a: &mut ws.drift[..n],
                    b: &mut ws.diffusion[..n],
                    support: &mut ws.support[..n],
                };
                if self
                    .sde
                    .scalar_step(t, ScalarLanes::new(&mut ws.x[..n], z, sizes, pass, kernel))
                    .is_none()
                {
                    return Ok(None);
                }
                let pass = Pass::Second {
                    heun,
                    a: &ws.drift[..n],
                    b: &ws.diffusion[..n],
                    support: &ws.support[..n],
                };
                let at = if heun { t + h } else { t };
                return Ok(self
                    .sde
                    .scalar_step(at, ScalarLanes::new(&mut ws.x[..n], z, sizes, pass, kernel)));
            }
            _ => {}
        }
        let milstein = matches!(
            self.scheme,
            LockstepScheme::Milstein | LockstepScheme::MilsteinLevy
        ) && self.sde.noise() == Noise::Scalar;
        let (kernel, sizes) = (ws.kernel, [h, sqrt_h, limit]);
        let z = &ws.normals[row..row + n];
        // one pass with the SDE's coefficients inlined, where it offers one
        let lanes = ScalarLanes::new(&mut ws.x[..n], z, sizes, Pass::Euler(milstein), kernel);
        if let Some(fine) = self.sde.scalar_step(t, lanes) {
            return Ok(Some(fine));
        }
        self.sde.drift_block(t, &ws.x, &mut ws.drift)?;
        self.sde.diffusion_block(t, &ws.x, &mut ws.diffusion)?;
        if milstein {
            if ws.ones.len() < n {
                ws.ones.resize(n, 1.0);
            }
            self.sde
                .milstein_block(t, &ws.x, &ws.ones[..n], &mut ws.correction)?;
        }
        let (a, b) = (&ws.drift[..n], &ws.diffusion[..n]);
        // Euler–Maruyama reads no `c` (any slice of the block's length will do)
        let c = if milstein { &ws.correction[..n] } else { b };
        let lanes = ScalarLanes::new(&mut ws.x[..n], z, sizes, Pass::Euler(milstein), kernel);
        Ok(Some(lanes.run_indexed(|k, _| [a[k], b[k], c[k]])))
    }
}

/// `x ← x + h a + b ΔW` for every path of the block in a general layout (per path:
/// [`noise_term`] per coordinate), inlined into each [`specialised`] arm.
#[inline(always)]
fn euler_rows(ws: &mut LockstepWorkspace, n: usize, h: f64, layout: Layout, d: usize) {
    let (m, width) = (layout.noise_dim(d), layout.width(d));
    let (x, a, b, dw) = (&mut ws.x, &ws.drift, &ws.diffusion, &ws.dw);
    for p in 0..n {
        let (bp, wp) = (&b[p * width..(p + 1) * width], &dw[p * m..(p + 1) * m]);
        for i in 0..d {
            let k = p * d + i;
            x[k] = x[k] + h * a[k] + noise_term(layout, bp, wp, i);
        }
    }
}

/// Column `j` of a path's diffusion, coordinate `i`: `(b e_j)_i` as
/// `Sde::diffusion_apply` forms it on the unit vector `e_j` ([`noise_term`]).
#[inline(always)]
pub(super) fn unit_column(layout: Layout, b: &[f64], i: usize, j: usize, m: usize) -> f64 {
    match layout {
        Layout::OneNoise => b[i] * 1.0,
        Layout::Diagonal => b[i] * if i == j { 1.0 } else { 0.0 },
        Layout::Matrix(_) => (0..m).fold(0.0, |s, k| s + b[i * m + k] * if k == j { 1.0 } else { 0.0 }),
    }
}

/// `x ← x + h a + b ΔW` for `d = m = 1` (one coefficient and one increment per path).
#[inline(always)]
pub(super) fn euler_in_place(x: &mut [f64], a: &[f64], b: &[f64], dw: &[f64], h: f64) {
    for (((x, &a), &b), &w) in x.iter_mut().zip(a).zip(b).zip(dw) {
        *x = *x + h * a + b * w;
    }
}

/// `x ← x + h a + b ΔW` for one Brownian motion and `d > 1` (per path `d` coefficients
/// and one increment: [`noise_term`]'s `OneNoise` without its per-coordinate dispatch;
/// rows of two, the scalar-factorisation SGD-SDE, unrolled), compiled for the CPU's
/// vectors (no operation fused: the same numbers on every instruction set).
struct EulerOneNoise<'s> {
    x: &'s mut [f64],
    a: &'s [f64],
    b: &'s [f64],
    dw: &'s [f64],
    h: f64,
    d: usize,
}

impl Vectorised for EulerOneNoise<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        #[inline(always)]
        fn rows<const D: usize>(x: &mut [f64], a: &[f64], b: &[f64], dw: &[f64], h: f64) {
            let (x, a, b) = (
                x.as_chunks_mut::<D>().0,
                a.as_chunks::<D>().0,
                b.as_chunks::<D>().0,
            );
            for (((x, a), b), &w) in x.iter_mut().zip(a).zip(b).zip(dw) {
                for i in 0..D {
                    x[i] = x[i] + h * a[i] + b[i] * w;
                }
            }
        }
        let (x, a, b, dw, h, d) = (self.x, self.a, self.b, self.dw, self.h, self.d);
        if d == 2 {
            return rows::<2>(x, a, b, dw, h);
        }
        let rows = x.chunks_exact_mut(d).zip(a.chunks_exact(d));
        for ((x, a), (b, &w)) in rows.zip(b.chunks_exact(d).zip(dw)) {
            for ((x, &a), &b) in x.iter_mut().zip(a).zip(b) {
                *x = *x + h * a + b * w;
            }
        }
    }
}
