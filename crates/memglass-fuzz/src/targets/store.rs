//! The history's blocks, as read back from a database file (a damaged disk, a file from
//! another version): `store::block::decode`, then the one-minute averages of what decoded.

use memglass_agent::store::block::{self, Sample, FIGURES};

use crate::Target;

/// A block's bytes as they are stored, and the same bytes taken as the layout inside the
/// compression (so that the varint parser sees arbitrary layouts, not only broken streams).
pub static HISTORY_BLOCK: Target = Target {
    name: "history-block",
    about: "history blocks: store::block::decode (DEFLATE, then the columns), minute_averages",
    seeds: |_| {
        let sample = |t: i64, usage: u64| {
            let mut v = [Some(4096); FIGURES];
            v[0] = Some(usage);
            v[1] = None;
            Sample { t, v }
        };
        let steady: Vec<Sample> = (0..360)
            .map(|i| sample(1_700_000_000 + i * 10, 50_000))
            .collect();
        let moving: Vec<Sample> = (0..60)
            .map(|i| {
                sample(
                    1_700_000_000 + i * 10 + i % 3,
                    50_000 + (i as u64 * 7919 % 13) * 4,
                )
            })
            .collect();
        let one = [sample(-1, 0)];
        [&steady[..], &moving[..], &one[..]]
            .iter()
            .flat_map(|s| [block::encode(s), block::columns(s)])
            .collect()
    },
    tokens: &["\x01", "\x00", "\x7f", "\u{80}"],
    mutate: None,
    run: |input| {
        for blob in [input.to_vec(), block::compress(input)] {
            if let Ok(samples) = block::decode(&blob) {
                let _ = block::minute_averages(&samples);
            }
        }
    },
};
