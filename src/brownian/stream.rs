//! Consecutive Brownian increments drawn on the fly (the fast path).

use super::{BrownianPath, Increment, LevyArea};
use crate::error::{Error, Result};
use crate::rng::{SeedTree, Stream, Xoshiro256PlusPlus};

/// Increments `ΔW = √h ξ`, `ξ ~ N(0, I_m)`, from the path's [`Stream::Brownian`]
/// generator; Lévy areas, if enabled, come from its own [`Stream::Levy`] generator,
/// so enabling them does not change the increments.
///
/// ```
/// use noether_sde::brownian::{BrownianPath, Increment, IncrementStream};
/// use noether_sde::rng::SeedTree;
/// let mut path = IncrementStream::new(&SeedTree::new(1), 0, 2);
/// let mut inc = Increment::new(2);
/// inc.h = 0.01;
/// path.next(&mut inc).unwrap();
/// assert!(inc.dw.iter().all(|w| w.abs() < 1.0));
/// ```
#[derive(Debug, Clone)]
pub struct IncrementStream {
    noise_dim: usize,
    /// `(h, √h)` of the last step (steps are usually all the same size).
    sqrt_h: (f64, f64),
    rng: Xoshiro256PlusPlus,
    levy: Option<(LevyArea, Xoshiro256PlusPlus)>,
    space_time: Option<Xoshiro256PlusPlus>,
}

impl IncrementStream {
    /// The stream of path `path` under `seeds`, noise dimension `noise_dim`.
    pub fn new(seeds: &SeedTree, path: u64, noise_dim: usize) -> Self {
        IncrementStream {
            noise_dim,
            sqrt_h: (0.0, 0.0),
            rng: seeds.rng(path, Stream::Brownian),
            levy: None,
            space_time: None,
        }
    }

    /// Also generate the time integrals `I_{(j,0)} = h(ΔW_j/2 + H_j)`, with the
    /// space-time Lévy area `H_j ~ N(0, h/12)` independent of `ΔW` drawn from the path's
    /// own [`Stream::SpaceTime`] generator (so enabling it changes no other number).
    pub fn with_space_time_area(mut self, seeds: &SeedTree, path: u64) -> Self {
        self.space_time = Some(seeds.rng(path, Stream::SpaceTime));
        self
    }

    /// Also generate Lévy areas with `levy` (from the path's `Levy` stream).
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if `levy` has a different noise dimension.
    pub fn with_levy_area(mut self, seeds: &SeedTree, path: u64, levy: LevyArea) -> Result<Self> {
        if levy.noise_dim() != self.noise_dim {
            return Err(Error::DimensionMismatch {
                what: "Lévy-area noise dimension",
                expected: self.noise_dim,
                got: levy.noise_dim(),
            });
        }
        self.levy = Some((levy, seeds.rng(path, Stream::Levy)));
        Ok(self)
    }
}

impl BrownianPath for IncrementStream {
    fn noise_dim(&self) -> usize {
        self.noise_dim
    }

    fn provides_area(&self) -> bool {
        self.levy.is_some()
    }

    fn provides_time_integral(&self) -> bool {
        self.space_time.is_some()
    }

    #[inline(always)]
    fn next(&mut self, inc: &mut Increment) -> Result<()> {
        if inc.h.to_bits() != self.sqrt_h.0.to_bits() {
            self.sqrt_h = (inc.h, inc.h.sqrt());
        }
        let sqrt_h = self.sqrt_h.1;
        for w in inc.dw.as_mut_slice() {
            *w = sqrt_h * crate::rng::standard_normal(&mut self.rng);
        }
        if let Some(area) = inc.area.as_mut() {
            match self.levy.as_mut() {
                Some((levy, rng)) => levy.sample_xoshiro(inc.h, &inc.dw, area, rng),
                None => {
                    return Err(Error::Brownian {
                        reason: "Lévy areas requested from a stream built without them \
                                 (use IncrementStream::with_levy_area)"
                            .into(),
                    })
                }
            }
        }
        if let Some(integral) = inc.time_integral.as_mut() {
            let Some(rng) = self.space_time.as_mut() else {
                return Err(Error::Brownian {
                    reason: "time integrals requested from a stream built without them \
                             (use IncrementStream::with_space_time_area)"
                        .into(),
                });
            };
            let scale = (inc.h / 12.0).sqrt();
            for (i, &w) in integral.as_mut_slice().iter_mut().zip(inc.dw.as_slice()) {
                *i = inc.h * (0.5 * w + scale * crate::rng::standard_normal(rng));
            }
        }
        Ok(())
    }
}
