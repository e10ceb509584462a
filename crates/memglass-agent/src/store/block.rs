//! Blocks: the samples of one series at one resolution over a stretch of time, in one
//! compressed blob. Memory figures change little from one collection to the next, so each
//! figure is stored as a column of differences: a figure that did not move costs a few
//! bytes per block, one that moves by whole pages costs about a byte per sample before
//! DEFLATE squeezes the repeats (docs/benchmarks.md has the figures, and what else was
//! tried).
//!
//! Layout, before compression (every integer a LEB128 varint, signed ones zigzagged):
//!
//! ```text
//! n                      samples (≥ 1)
//! t[0], then n−1 second differences of t (regular collections give zeros)
//! 12 × column:           first value, divisor g, then n−1 differences / g (none when g = 0)
//! ```
//!
//! A value is stored as v + 1 with 0 for "absent", so a column may mix both. The blob is
//! a version byte followed by a raw DEFLATE stream.

/// Figures per sample: usage, limit, anon, active_anon, inactive_anon, file, active_file,
/// inactive_file, shmem, file_dirty, kernel (KiB) and oom_kill (a count).
pub const FIGURES: usize = 12;

/// The largest value a figure keeps (4 EiB in KiB; larger ones are clamped).
const MAX_VALUE: u64 = (1 << 62) - 2;

/// Format of the blobs this version writes.
const VERSION: u8 = 1;

/// No block holds more (a week of seconds): bounds what a corrupt blob can make us allocate.
const MAX_SAMPLES: u64 = 604_800;

/// One collection of one series: Unix seconds and the figures (None: not known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub t: i64,
    /// The [`FIGURES`], in that order.
    pub v: [Option<u64>; FIGURES],
}

/// A blob that does not decode: a damaged file or a format from a newer memglass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history block does not decode: {0}")]
pub struct Corrupt(&'static str);

/// Encode samples (oldest first, at least one) into a blob.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    compress(&columns(samples))
}

/// A blob of `raw` (a layout as [`columns`] makes it): the version byte and DEFLATE.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    out.push(VERSION);
    // The compressor is kept per thread: setting one up costs more than a block's data.
    COMPRESS.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        loop {
            out.reserve(raw.len().max(64));
            let (read, written) = (c.total_in(), c.total_out());
            let consumed = usize::try_from(read).unwrap_or(raw.len()).min(raw.len());
            match c.compress_vec(&raw[consumed..], &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) | Err(_) => break,
                Ok(_) if (c.total_in(), c.total_out()) == (read, written) => break,
                Ok(_) => {}
            }
        }
    });
    out
}

thread_local! {
    static COMPRESS: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::default(), false));
    static DECOMPRESS: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(false));
}

/// The layout before compression (see the module's documentation).
pub fn columns(samples: &[Sample]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(16 + samples.len() * 4);
    put(&mut raw, samples.len() as u64);
    let mut prev_t = 0i64;
    let mut prev_step = 0i64;
    for (i, s) in samples.iter().enumerate() {
        if i == 0 {
            put(&mut raw, zigzag(s.t));
        } else {
            let step = s.t.wrapping_sub(prev_t);
            put(&mut raw, zigzag(step.wrapping_sub(prev_step)));
            prev_step = step;
        }
        prev_t = s.t;
    }
    for figure in 0..FIGURES {
        let value = |s: &Sample| stored(s.v[figure]);
        // Every value is ≤ 2^62, so differences fit an i64.
        let diffs = || {
            samples
                .windows(2)
                .map(|w| value(&w[1]) as i64 - value(&w[0]) as i64)
        };
        let divisor = diffs()
            .fold(0u64, |g, d| gcd(g, d.unsigned_abs()))
            .min(MAX_VALUE);
        put(&mut raw, samples.first().map_or(0, value));
        put(&mut raw, divisor);
        if divisor > 0 {
            let g = divisor as i64;
            for d in diffs() {
                put(&mut raw, zigzag(d / g));
            }
        }
    }
    raw
}

/// Decode a blob made by [`encode`]. Never panics, whatever the bytes.
pub fn decode(blob: &[u8]) -> Result<Vec<Sample>, Corrupt> {
    let (&version, stream) = blob.split_first().ok_or(Corrupt("empty"))?;
    if version != VERSION {
        return Err(Corrupt("unknown version"));
    }
    // The stream holds at most 10 bytes per integer of the largest block.
    let limit = ((MAX_SAMPLES + 1) * (FIGURES as u64 + 1) * 10) as usize;
    let raw = DECOMPRESS.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        let mut raw = Vec::with_capacity(stream.len() * 4 + 64);
        loop {
            if raw.len() == raw.capacity() {
                if raw.len() >= limit {
                    return Err(Corrupt("block too large"));
                }
                raw.reserve(raw.len().max(256));
            }
            let (read, written) = (d.total_in(), d.total_out());
            let rest = usize::try_from(read)
                .ok()
                .and_then(|at| stream.get(at..))
                .ok_or(Corrupt("bad DEFLATE stream"))?;
            // `None`, not `Finish`: the output may grow between calls.
            match d.decompress_vec(rest, &mut raw, flate2::FlushDecompress::None) {
                Ok(flate2::Status::StreamEnd) => return Ok(raw),
                Ok(_)
                    if (d.total_in(), d.total_out()) == (read, written)
                        && raw.len() < raw.capacity() =>
                {
                    return Err(Corrupt("truncated DEFLATE stream"))
                }
                Ok(_) => {}
                Err(_) => return Err(Corrupt("bad DEFLATE stream")),
            }
        }
    })?;
    let mut r = Reader { raw: &raw, at: 0 };
    let n = r.get()?;
    if n == 0 || n > MAX_SAMPLES || n > raw.len() as u64 {
        return Err(Corrupt("sample count"));
    }
    let n = n as usize;
    let mut samples = vec![
        Sample {
            t: 0,
            v: [None; FIGURES],
        };
        n
    ];
    let mut t = unzigzag(r.get()?);
    let mut step = 0i64;
    samples[0].t = t;
    for s in samples.iter_mut().skip(1) {
        step = step.wrapping_add(unzigzag(r.get()?));
        t = t.wrapping_add(step);
        s.t = t;
    }
    for figure in 0..FIGURES {
        let mut value = r.get()?;
        let divisor = r.get()?;
        if value > MAX_VALUE + 1 || divisor > MAX_VALUE {
            return Err(Corrupt("value out of range"));
        }
        samples[0].v[figure] = loaded(value);
        for s in samples.iter_mut().skip(1) {
            if divisor > 0 {
                let diff = i128::from(unzigzag(r.get()?)) * i128::from(divisor);
                value = u64::try_from(i128::from(value) + diff)
                    .ok()
                    .filter(|v| *v <= MAX_VALUE + 1)
                    .ok_or(Corrupt("value out of range"))?;
            }
            s.v[figure] = loaded(value);
        }
    }
    if r.at != raw.len() {
        return Err(Corrupt("trailing bytes"));
    }
    Ok(samples)
}

/// The one-minute averages of `samples` (oldest first), one per minute that has any, at
/// the minute's start: sizes averaged (rounded down) over the samples that have them,
/// limit and oom_kill the minute's maxima. What `Resolution::Minute` reads.
pub fn minute_averages(samples: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let minute = minute_of(samples[i].t);
        let end = samples[i..]
            .iter()
            .position(|s| minute_of(s.t) != minute)
            .map_or(samples.len(), |k| i + k);
        let group = &samples[i..end];
        let mut v = [None; FIGURES];
        for (figure, slot) in v.iter_mut().enumerate() {
            let present = group.iter().filter_map(|s| s.v[figure]);
            *slot = if figure == LIMIT || figure == OOM_KILL {
                present.max()
            } else {
                let (sum, count) =
                    present.fold((0u128, 0u128), |(s, c), x| (s + u128::from(x), c + 1));
                (count > 0).then(|| u64::try_from(sum / count).unwrap_or(u64::MAX))
            };
        }
        out.push(Sample { t: minute, v });
        i = end;
    }
    out
}

/// The start of the minute of `t`.
pub fn minute_of(t: i64) -> i64 {
    t.div_euclid(60).saturating_mul(60)
}

/// Index of the limit among the figures (a maximum when averaged).
const LIMIT: usize = 1;
/// Index of oom_kill among the figures (a maximum when averaged).
const OOM_KILL: usize = 11;

fn stored(value: Option<u64>) -> u64 {
    value.map_or(0, |v| v.min(MAX_VALUE) + 1)
}

fn loaded(value: u64) -> Option<u64> {
    value.checked_sub(1)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn get(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.raw.get(self.at).ok_or(Corrupt("truncated"))?;
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Corrupt("varint too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: i64, usage: u64) -> Sample {
        let mut v = [Some(0); FIGURES];
        v[0] = Some(usage);
        v[LIMIT] = Some(1 << 20);
        v[4] = None;
        Sample { t, v }
    }

    #[test]
    fn round_trip_keeps_every_value() {
        let mut samples: Vec<Sample> = (0..500)
            .map(|i| sample(1_700_000_000 + i * 10, 40_000 + (i as u64 % 7) * 4))
            .collect();
        // Irregular times, a figure appearing and disappearing, extremes.
        samples[100].t += 3;
        samples[200].v[4] = Some(12);
        samples[300].v[7] = Some(u64::MAX);
        samples[301].v[7] = None;
        samples[499].v[11] = Some(2);
        let back = decode(&encode(&samples)).unwrap();
        samples[300].v[7] = Some(MAX_VALUE);
        assert_eq!(back, samples);
        let one = [sample(-5, 0)];
        assert_eq!(decode(&encode(&one)).unwrap(), one);
    }

    #[test]
    fn steady_figures_cost_almost_nothing() {
        // An hour at 10 s of a cgroup whose figures do not move, and one whose usage moves
        // by whole pages (4 KiB) every sample.
        let still: Vec<Sample> = (0..360).map(|i| sample(i * 10, 50_000)).collect();
        let moving: Vec<Sample> = (0..360)
            .map(|i| sample(i * 10, 50_000 + ((i * 7919) % 13) as u64 * 4))
            .collect();
        let (a, b) = (encode(&still).len(), encode(&moving).len());
        assert!(a < 64, "{a} bytes for 360 samples that never move");
        assert!(b < 360, "{b} bytes for 360 samples whose usage moves");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = encode(&[sample(1, 2), sample(11, 6)]);
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        let mut bytes = good.clone();
        for i in 1..bytes.len() {
            bytes[i] ^= 0x5a;
            let _ = decode(&bytes);
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 1, 2]).is_err());
    }

    #[test]
    fn minutes_average_sizes_and_keep_maxima() {
        let mut a = sample(60, 10);
        let mut b = sample(70, 13);
        let c = sample(125, 100);
        a.v[LIMIT] = Some(5);
        b.v[LIMIT] = Some(9);
        a.v[OOM_KILL] = Some(1);
        b.v[4] = Some(8);
        let minutes = minute_averages(&[a, b, c]);
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].t, 60);
        assert_eq!(minutes[0].v[0], Some(11)); // (10 + 13) / 2, rounded down
        assert_eq!(minutes[0].v[LIMIT], Some(9));
        assert_eq!(minutes[0].v[OOM_KILL], Some(1));
        assert_eq!(minutes[0].v[4], Some(8)); // the one sample that has it
        assert_eq!(minutes[1].t, 120);
        assert_eq!(minutes[1].v[0], Some(100));
    }
}
