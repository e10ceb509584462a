//! Inputs for a target: seeds from recorded fixtures, mutated the way real input goes wrong.
//!
//! No coverage feedback (that needs libFuzzer or AFL's instrumentation, which stable Rust
//! does not give offline): the mutations are instead chosen to reach deep into text
//! formats. Each input is a seed with one to five stacked mutations, or (rarely) random
//! bytes or a concatenation of the target's tokens:
//!
//! - bytes: flip a bit, set, insert or delete bytes, duplicate a range, truncate;
//! - lines: delete, duplicate (up to thousands of times), swap, shuffle, join, or take a
//!   line from another seed; CRLF and blank lines;
//! - numbers: a digit run replaced with an edge value (0, 2^64, i64::MIN, 1e308, NaN…);
//! - tokens: a word of the target's format inserted or put in place of a word;
//! - splices: the head of one seed on the tail of another;
//! - text: invalid UTF-8, multi-byte characters, a line of up to 100,000 bytes.

/// A small, fast, seedable generator (SplitMix64): runs are reproducible from `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
}

/// Numbers at the edges of every integer and float type a parser might use.
pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "-0",
    "00000000000000000000001",
    "127",
    "128",
    "255",
    "256",
    "4294967295",
    "4294967296",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999999999999999999999999",
    "1e308",
    "1e309",
    "-1e308",
    "1e-400",
    "NaN",
    "inf",
    "-inf",
    "0x10",
    "1.5",
    ".5",
    "5.",
    "1_000",
    "+5",
];

/// Byte sequences that are not UTF-8, or UTF-8 that is more than one byte per character.
const ODD_TEXT: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x92",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    "é".as_bytes(),
    "€".as_bytes(),
    "\u{2028}".as_bytes(),
    "𝔘".as_bytes(),
    "\u{feff}".as_bytes(),
    b"\0",
    b"\t",
    b"\r\n",
    b"\r",
    b"\x1b[0m",
];

/// Bytes that delimit fields in the formats memglass reads.
const DELIMITERS: &[u8] = b" \n\t:;,=-./\\\"'{}[]()<>#%+_0123456789xk";

/// Upper bound on an input's size: big enough for a huge line, small enough to stay fast.
pub const MAX_INPUT: usize = 1 << 20;

/// What inputs of one target are made from.
pub struct Mutator<'a> {
    /// Seeds, taken from recorded fixtures.
    pub seeds: &'a [Vec<u8>],
    /// Words of the target's format.
    pub tokens: &'a [&'a str],
}

impl Mutator<'_> {
    /// A fresh input.
    pub fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        match rng.below(40) {
            0 => (0..rng.below(512)).map(|_| rng.next_u64() as u8).collect(),
            1 => {
                let mut out = Vec::new();
                for _ in 0..rng.below(64) {
                    self.push_token(rng, &mut out);
                    if rng.one_in(3) {
                        out.push(*rng.pick(DELIMITERS).unwrap_or(&b' '));
                    }
                }
                out
            }
            _ => {
                let mut input = rng.pick(self.seeds).cloned().unwrap_or_default();
                for _ in 0..=rng.below(5) {
                    self.mutate(rng, &mut input);
                }
                input.truncate(MAX_INPUT);
                input
            }
        }
    }

    /// Apply one mutation in place.
    pub fn mutate(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let len = input.len();
        match rng.below(20) {
            0 => {
                if len > 0 {
                    let at = rng.below(len);
                    input[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                if len > 0 {
                    let at = rng.below(len);
                    input[at] = if rng.one_in(2) {
                        *rng.pick(DELIMITERS).unwrap_or(&0)
                    } else {
                        rng.next_u64() as u8
                    };
                }
            }
            2 => {
                let at = rng.below(len + 1);
                let byte = *rng.pick(DELIMITERS).unwrap_or(&b' ');
                input.insert(at, byte);
            }
            3 => {
                if len > 0 {
                    let at = rng.below(len);
                    let most = if rng.one_in(4) {
                        len - at
                    } else {
                        16.min(len - at)
                    };
                    let n = 1 + rng.below(most);
                    input.drain(at..at + n);
                }
            }
            4 => {
                if len > 0 {
                    let at = rng.below(len);
                    let n = 1 + rng.below(64.min(len - at));
                    let chunk = input[at..at + n].to_vec();
                    let to = rng.below(len + 1);
                    input.splice(to..to, chunk);
                }
            }
            5 => input.truncate(rng.below(len + 1)),
            6 => self.splice(rng, input),
            7 => self.take_from_seed(rng, input),
            8..=10 => self.edit_lines(rng, input),
            11 | 12 => self.number(rng, input),
            13 | 14 => self.token(rng, input),
            15 => {
                let odd = *rng.pick(ODD_TEXT).unwrap_or(&&b"\xff"[..]);
                let at = rng.below(len + 1);
                input.splice(at..at, odd.iter().copied());
            }
            16 => self.long_run(rng, input),
            17 => {
                // Another seed appended: two files or reports back to back.
                if let Some(other) = rng.pick(self.seeds) {
                    input.extend_from_slice(other);
                }
            }
            18 => {
                // Line endings: CRLF everywhere, or no final newline.
                if rng.one_in(2) {
                    let text = std::mem::take(input);
                    for &b in &text {
                        if b == b'\n' {
                            input.push(b'\r');
                        }
                        input.push(b);
                    }
                } else {
                    while input.last() == Some(&b'\n') {
                        input.pop();
                    }
                }
            }
            _ => {
                // Whitespace runs and empty fields.
                let at = rng.below(len + 1);
                let what: &[u8] = rng
                    .pick(&[&b"  "[..], b"\t", b"\n\n", b"", b" \n "])
                    .copied()
                    .unwrap_or(b" ");
                input.splice(at..at, what.iter().copied());
            }
        }
    }

    fn push_token(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        let token = if rng.one_in(4) || self.tokens.is_empty() {
            rng.pick(NUMBERS).copied().unwrap_or("0")
        } else {
            rng.pick(self.tokens).copied().unwrap_or("")
        };
        out.extend_from_slice(token.as_bytes());
    }

    fn splice(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let Some(other) = rng.pick(self.seeds) else {
            return;
        };
        let cut = rng.below(input.len() + 1);
        let from = rng.below(other.len() + 1);
        input.truncate(cut);
        input.extend_from_slice(&other[from..]);
    }

    fn take_from_seed(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let Some(other) = rng.pick(self.seeds) else {
            return;
        };
        if other.is_empty() {
            return;
        }
        let from = rng.below(other.len());
        let n = 1 + rng.below(256.min(other.len() - from));
        let at = rng.below(input.len() + 1);
        input.splice(at..at, other[from..from + n].iter().copied());
    }

    fn edit_lines(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = input.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let n = lines.len();
        match rng.below(7) {
            0 if n > 0 => {
                lines.remove(rng.below(n));
            }
            1 if n > 0 => {
                let line = lines[rng.below(n)].clone();
                let times = if rng.one_in(8) {
                    1 + rng.below(5000)
                } else {
                    1 + rng.below(8)
                };
                let at = rng.below(n + 1);
                let budget = MAX_INPUT / (line.len() + 1);
                lines.splice(at..at, std::iter::repeat_n(line, times.min(budget)));
            }
            2 if n > 1 => {
                let (a, b) = (rng.below(n), rng.below(n));
                lines.swap(a, b);
            }
            3 if n > 1 => {
                for i in (1..n).rev() {
                    let j = rng.below(i + 1);
                    lines.swap(i, j);
                }
            }
            4 => {
                if let Some(other) = rng.pick(self.seeds) {
                    let theirs: Vec<&[u8]> = other.split(|&b| b == b'\n').collect();
                    if let Some(line) = rng.pick(&theirs) {
                        lines.insert(rng.below(n + 1), line.to_vec());
                    }
                }
            }
            5 if n > 1 => {
                // Two lines joined (a lost newline).
                let at = rng.below(n - 1);
                let next = lines.remove(at + 1);
                lines[at].extend_from_slice(&next);
            }
            _ if n > 0 => {
                // A line cut short, as a truncated log or a short read leaves it.
                let at = rng.below(n);
                let keep = rng.below(lines[at].len() + 1);
                lines[at].truncate(keep);
            }
            _ => {}
        }
        *input = lines.join(&b'\n');
    }

    fn number(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let runs: Vec<(usize, usize)> = digit_runs(input);
        let replacement = rng.pick(NUMBERS).copied().unwrap_or("0").as_bytes();
        match rng.pick(&runs) {
            Some(&(start, end)) => {
                input.splice(start..end, replacement.iter().copied());
            }
            None => {
                let at = rng.below(input.len() + 1);
                input.splice(at..at, replacement.iter().copied());
            }
        }
    }

    fn token(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let mut token = Vec::new();
        self.push_token(rng, &mut token);
        let words: Vec<(usize, usize)> = word_spans(input);
        match rng.pick(&words) {
            Some(&(start, end)) if rng.one_in(2) => {
                input.splice(start..end, token);
            }
            _ => {
                let at = rng.below(input.len() + 1);
                input.splice(at..at, token);
            }
        }
    }

    fn long_run(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let mut unit = Vec::new();
        if rng.one_in(2) {
            self.push_token(rng, &mut unit);
        }
        if unit.is_empty() {
            unit.push(*rng.pick(DELIMITERS).unwrap_or(&b'a'));
        }
        let room = MAX_INPUT.saturating_sub(input.len());
        // Mostly a long word; one time in sixteen a line of up to 100,000 bytes.
        let most = if rng.one_in(16) { 100_000 } else { 256 };
        let times = (1 + rng.below(most / unit.len().max(1))).min(room / unit.len());
        let run: Vec<u8> = unit.repeat(times);
        let at = rng.below(input.len() + 1);
        input.splice(at..at, run);
    }
}

/// Start and end of every run of ASCII digits.
fn digit_runs(input: &[u8]) -> Vec<(usize, usize)> {
    spans(input, |b| b.is_ascii_digit())
}

/// Start and end of every run of non-space bytes.
fn word_spans(input: &[u8]) -> Vec<(usize, usize)> {
    spans(input, |b| !b.is_ascii_whitespace())
}

fn spans(input: &[u8], inside: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in input.iter().enumerate() {
        match (inside(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, input.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_reproducible_and_varied() {
        let seeds = vec![
            b"anon 4096\nfile 8192\n".to_vec(),
            b"some avg10=0.00 total=1\n".to_vec(),
        ];
        let mutator = Mutator {
            seeds: &seeds,
            tokens: &["max", "kB"],
        };
        let make = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| mutator.generate(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(make(7), make(7));
        let inputs = make(7);
        let distinct: std::collections::HashSet<_> = inputs.iter().collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
        assert!(inputs.iter().all(|i| i.len() <= MAX_INPUT));
        assert!(inputs.iter().any(|i| std::str::from_utf8(i).is_err()));
    }

    #[test]
    fn spans_of_digits_and_words() {
        assert_eq!(digit_runs(b"a 12 b3"), [(2, 4), (6, 7)]);
        assert_eq!(word_spans(b" ab  c"), [(1, 3), (5, 6)]);
    }
}
