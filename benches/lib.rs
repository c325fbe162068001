//! The criterion benchmarks of `noether-sde` (`integrators.rs`, `sgd_sde.rs`,
//! `ensemble.rs`) live in this workspace member so that `cargo test` never compiles
//! criterion. Run them with `cargo bench -p noether-sde-benches [--bench NAME]`; the
//! numbers and how to read them are in BENCHMARKS.md.
