//! Fuzzes what `noether-sde merge` parses: a shard's serialised `EnsembleStatistics`
//! (validated on deserialisation: nodes tiling the path range, array lengths, counts,
//! divergence records) and the exact merge of two of them. Any input must give a value
//! or a typed error — never a panic, an overflow or an out-of-bounds index.
//! (`tests/it` runs the same property on random corruptions of real shards with
//! proptest on stable Rust; this target explores further under libFuzzer.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use noether_sde::ensemble::EnsembleStatistics;

fuzz_target!(|data: &[u8]| {
    // two documents separated by a NUL byte: each parsed, then merged both ways
    let mut parts = data.splitn(2, |&b| b == 0);
    let first = parts.next().unwrap_or_default();
    let second = parts.next().unwrap_or_default();
    let a = serde_json::from_slice::<EnsembleStatistics>(first);
    let b = serde_json::from_slice::<EnsembleStatistics>(second);
    if let (Ok(a), Ok(b)) = (a, b) {
        let _ = a.clone().merge(b.clone());
        let _ = b.merge(a);
    }
});
