//! The scheme catalogue: every scheme of the crate in one list (THEORY §8).
//!
//! The list itself is the `catalogue!` invocation in [`crate::scheme`]: one line per
//! scheme file, naming the module and a constructor. Everything a front end needs —
//! names, aliases, orders, accepted noise, calculus, help text — comes from each
//! scheme's own [`SchemeInfo`], so the CLI (`--method`, `convergence`, `schemes`), the
//! convergence suite, the report, the conformance tests and the Python bindings all
//! read the same entries. A front end runs a scheme chosen by name through a
//! [`SchemeVisitor`], which receives the concrete scheme type: dispatch happens once per
//! run, not once per step.
//!
//! ```
//! use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};
//! use noether_sde::scheme::Scheme;
//!
//! let kind = SchemeKind::parse("em")?;
//! assert_eq!(kind.info().name, "euler_maruyama");
//!
//! // run code generic in the scheme type, chosen at run time
//! struct Name;
//! impl SchemeVisitor for Name {
//!     type Output = &'static str;
//!     fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> &'static str {
//!         scheme.info().name
//!     }
//! }
//! assert_eq!(SchemeKind::parse("rk-milstein")?.visit(Name), "rk_milstein");
//! # Ok::<(), noether_sde::Error>(())
//! ```

use super::{Scheme, SchemeInfo};
use crate::error::{Error, Result};
use crate::sde::Calculus;

pub use super::SchemeKind;

/// Code generic in the scheme type, run on a scheme chosen at run time by
/// [`SchemeKind::visit`].
pub trait SchemeVisitor {
    /// What the visit returns.
    type Output;
    /// Called once with the concrete scheme.
    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> Self::Output;
}

struct InfoOf;

impl SchemeVisitor for InfoOf {
    type Output = SchemeInfo;
    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> SchemeInfo {
        scheme.info()
    }
}

/// `name` in canonical spelling: lower case, `-` → `_`.
fn canonical(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

impl SchemeKind {
    /// The scheme's [`SchemeInfo`].
    pub fn info(self) -> SchemeInfo {
        self.visit(InfoOf)
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The scheme named `name`: its canonical name or an alias, with `-` and `_`
    /// interchangeable and case ignored.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an unknown name, listing the known ones.
    pub fn parse(name: &str) -> Result<SchemeKind> {
        let wanted = canonical(name);
        Self::ALL
            .iter()
            .copied()
            .find(|kind| {
                let info = kind.info();
                info.name == wanted || info.aliases.iter().any(|a| canonical(a) == wanted)
            })
            .ok_or_else(|| Error::InvalidParameter {
                name: "scheme",
                value: name.to_string(),
                reason: format!("unknown scheme; known: {}", Self::names().join(", ")),
            })
    }

    /// Every canonical name, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// Whether solving an SDE written in `calculus` needs the conversion to the
    /// scheme's calculus (`sde::convert::StratonovichForm` for a Stratonovich scheme on
    /// an Itô SDE).
    pub fn needs_conversion(self, calculus: Calculus) -> bool {
        self.info().calculus != calculus
    }

    /// One JSON object describing the scheme (what `noether-sde schemes --json` prints):
    /// `name`, `aliases`, `summary`, `strong_order`, `strong_order_by_noise`,
    /// `weak_order`, `noise`, `calculus`, `levy_area`, `adaptive`.
    pub fn to_json(self) -> serde_json::Value {
        let info = self.info();
        let by_noise: serde_json::Map<String, serde_json::Value> = info
            .noise
            .iter()
            .map(|&n| (n.name().to_string(), info.strong_order_on(n).into()))
            .collect();
        serde_json::json!({
            "name": info.name,
            "aliases": info.aliases,
            "summary": info.summary,
            "strong_order": info.strong_order,
            "strong_order_by_noise": by_noise,
            "weak_order": info.weak_order,
            "noise": info.noise.iter().map(|n| n.name()).collect::<Vec<_>>(),
            "calculus": match info.calculus {
                Calculus::Ito => "ito",
                Calculus::Stratonovich => "stratonovich",
            },
            "levy_area": info.needs_levy_area,
            "adaptive": info.adaptive,
        })
    }

    /// A readable table of the catalogue, one line per scheme (for help texts and
    /// `noether-sde schemes`).
    pub fn table() -> String {
        use std::fmt::Write;
        let mut s = format!(
            "{:<17} {:<13} {:>6} {:>4}  {:<12} {}\n",
            "scheme", "aliases", "strong", "weak", "calculus", "noise; summary"
        );
        for kind in Self::ALL {
            let info = kind.info();
            let strong = info
                .strong_order_by_noise
                .iter()
                .map(|(n, o)| format!(", {o} on {}", n.name()))
                .collect::<String>();
            let _ = writeln!(
                s,
                "{:<17} {:<13} {:>6} {:>4}  {:<12} {}{}; {}",
                info.name,
                info.aliases.join(","),
                info.strong_order,
                info.weak_order,
                format!("{:?}", info.calculus).to_lowercase(),
                info.noise.iter().map(|n| n.name()).collect::<Vec<_>>().join("|"),
                strong,
                info.summary
            );
        }
        s
    }
}

/// Defines [`SchemeKind`] from the list in [`crate::scheme`]: each entry declares the
/// scheme's module (re-exporting its public items) and one variant per constructor.
macro_rules! catalogue {
    ($( $module:ident { $( $(#[$doc:meta])* $variant:ident => $ctor:expr ),+ $(,)? } )+) => {
        $( mod $module; pub use $module::*; )+

        /// Every scheme of the crate (see [`catalogue`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum SchemeKind {
            $( $(
                #[doc = concat!("`", stringify!($ctor), "`")]
                $(#[$doc])*
                $variant,
            )+ )+
        }

        impl SchemeKind {
            /// The catalogue, in order.
            pub const ALL: &'static [SchemeKind] = &[$( $( SchemeKind::$variant, )+ )+];

            /// Runs `visitor` on a freshly constructed scheme of this kind.
            pub fn visit<V: catalogue::SchemeVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $( $( SchemeKind::$variant => visitor.visit($ctor), )+ )+
                }
            }
        }
    };
}
pub(super) use catalogue;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve_uniquely() {
        let mut seen = std::collections::HashSet::new();
        for kind in SchemeKind::ALL {
            let info = kind.info();
            assert_eq!(canonical(info.name), info.name, "canonical spelling");
            for name in std::iter::once(info.name).chain(info.aliases.iter().copied()) {
                assert!(seen.insert(canonical(name)), "{name} is used twice");
                assert_eq!(SchemeKind::parse(name).unwrap(), *kind);
                assert_eq!(SchemeKind::parse(&name.replace('_', "-")).unwrap(), *kind);
            }
            assert!(!info.summary.is_empty(), "{} has no summary", info.name);
        }
        assert!(matches!(
            SchemeKind::parse("runge_kutta_99"),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
