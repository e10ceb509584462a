//! Kubernetes `resource.Quantity` strings (`128Mi`, `1.5Gi`, `500M`, `1e9`, `100m`) parsed
//! exactly, the way the API server's `resource.ParseQuantity` reads them.
//!
//! Grammar (from `k8s.io/apimachinery/pkg/api/resource/quantity.go`):
//!
//! ```text
//! <quantity>        ::= <signedNumber><suffix>
//! <signedNumber>    ::= <number> | +<number> | -<number>
//! <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//! <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//! <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//! <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
//! ```
//!
//! What the grammar leaves open is read as `parseQuantityString` and `ParseQuantity` do: a
//! missing number is zero (`Mi`, `.`, `+` are all 0), any number of digits is accepted, and the
//! exponent of `e`/`E` is parsed as an `int64` and then truncated to `int32`
//! (`suffixHandler.interpret`).
//!
//! A value is kept as nano-units (value × 10⁹) in a `u128`, rounded up to the next nano-unit
//! (`amount.Round(amount, Nano, inf.RoundUp)`), so every quantity a cluster can hold is exact
//! and sums of them stay exact. Two limits follow apimachinery:
//!
//! - **The binary cap.** `ParseQuantity` caps a quantity written with a binary suffix
//!   (`Ki`…`Ei`) at 2^63−1 (`maxAllowed`, "The max is just a simple cap"): `9Ei` and
//!   `9223372036854775807Ki` are both 9223372036854775807. Decimal quantities are not capped
//!   (`12E` stays 12×10¹⁸, and kubelet compares them exactly with `Quantity.Cmp`).
//! - **Saturation.** apimachinery keeps any decimal exactly (`inf.Dec`); memglass saturates at
//!   the largest `u128` nano value (about 3.4×10²⁹ units) instead of refusing the string, so one
//!   absurd value never rejects a whole pod list, and it still compares above every real figure.
//!
//! [`parse_memory`] turns a memory quantity into bytes, rounding a fractional byte up to the next
//! whole byte (`Quantity.Value()`), so `100m` (0.1 byte) is 1 byte and `0.5Gi` is 536870912.
//! Bytes above 2^64−1 saturate at `u64::MAX`: `Value()` itself would return a wrapped or zero
//! `int64` there (`positiveScaleInt64` gives up, `big.Int.Int64` keeps the low 64 bits), which
//! no figure should inherit, while every comparison kubelet makes on such a value (`Cmp`,
//! exact) comes out the same against `u64::MAX`.

use std::fmt;

/// Nano-units per unit.
const NANO: u128 = 1_000_000_000;

/// `maxAllowed` of apimachinery (2^63−1 units) in nano-units: the cap on binary-suffixed values.
const MAX_BINARY_NANOS: u128 = (i64::MAX as u128) * NANO;

/// A non-negative resource quantity, exact to a nano-unit (fractions below are rounded up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: u128,
}

/// A quantity string that is not a valid non-negative Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: {reason}")]
pub struct QuantityError {
    input: String,
    reason: &'static str,
}

impl QuantityError {
    fn new(input: &str, reason: &'static str) -> QuantityError {
        QuantityError {
            input: input.to_string(),
            reason,
        }
    }

    /// The offending string, as given.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was refused, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// How the suffix scales the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// × 10^exp (`DecimalSI`, `DecimalExponent`).
    Decimal(i32),
    /// × 2^exp (`BinarySI`).
    Binary(u32),
}

impl Quantity {
    /// Zero.
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// A whole number of units (bytes for memory, cores for cpu).
    pub fn from_units(units: u64) -> Quantity {
        Quantity {
            nanos: u128::from(units) * NANO,
        }
    }

    /// Parses a Kubernetes quantity string. Negative values are refused: no request, limit,
    /// capacity or overhead may be negative (the API server's validation refuses them too).
    pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
        let err = |reason| QuantityError::new(input, reason);
        let bytes = input.as_bytes();
        if bytes.is_empty() {
            return Err(err("empty"));
        }
        let mut pos = 0;
        let mut negative = false;
        match bytes[0] {
            b'+' => pos += 1,
            b'-' => {
                negative = true;
                pos += 1;
            }
            _ => {}
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &input[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &input[frac_start..pos];
        }
        let scale = suffix_scale(&input[pos..]).ok_or_else(|| err("unknown suffix"))?;
        let frac_len = i64::try_from(frac_digits.len()).unwrap_or(i64::MAX);
        // The number is mantissa × 10^-frac_len, the mantissa being every digit in order.
        let mantissa = int_digits.bytes().chain(frac_digits.bytes());
        let nanos = match scale {
            Scale::Decimal(exp) => {
                ceil_scaled(mantissa, 0, i64::from(exp).saturating_sub(frac_len) + 9)
            }
            Scale::Binary(exp) => {
                ceil_scaled(mantissa, exp, 9i64.saturating_sub(frac_len)).min(MAX_BINARY_NANOS)
            }
        };
        if negative && nanos != 0 {
            return Err(err("negative"));
        }
        Ok(Quantity { nanos })
    }

    /// The value in nano-units (value × 10⁹).
    pub fn nanos(self) -> u128 {
        self.nanos
    }

    /// True for zero.
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    /// The value rounded up to a whole unit (Kubernetes' `Quantity.Value()`), `None` when it
    /// does not fit a `u64`.
    pub fn ceil_units(self) -> Option<u64> {
        u64::try_from(self.nanos.div_ceil(NANO)).ok()
    }

    /// [`Quantity::ceil_units`], saturating at `u64::MAX` (see the module docs for why not
    /// `Value()`'s wrapped `int64`).
    pub fn ceil_units_saturating(self) -> u64 {
        self.ceil_units().unwrap_or(u64::MAX)
    }

    /// The value in thousandths rounded up (Kubernetes' `Quantity.MilliValue()`: cpu
    /// millicores), `None` when it does not fit a `u64`.
    pub fn ceil_millis(self) -> Option<u64> {
        u64::try_from(self.nanos.div_ceil(NANO / 1000)).ok()
    }

    /// Sum, saturating at the largest representable value (far beyond any real cluster).
    pub fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;

    fn add(self, other: Quantity) -> Quantity {
        self.saturating_add(other)
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::ZERO, Quantity::saturating_add)
    }
}

impl fmt::Display for Quantity {
    /// Plain decimal units, with the fraction when there is one (`1.5`, `104857600`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.nanos / NANO;
        let frac = self.nanos % NANO;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// ⌈mantissa × 2^shift × 10^exp10⌉ for a mantissa given as ASCII decimal digits of any length,
/// saturating at `u128::MAX`. Exact, like apimachinery's `inf.Dec` arithmetic: the mantissa is
/// multiplied by 2^shift digit by digit, then the digits below 10^-exp10 only decide whether to
/// round up.
fn ceil_scaled(mantissa: impl Iterator<Item = u8>, shift: u32, exp10: i64) -> u128 {
    // Most significant digit first, leading zeros dropped.
    let mut digits: Vec<u8> = mantissa.map(|d| d - b'0').skip_while(|&d| d == 0).collect();
    if digits.is_empty() {
        return 0;
    }
    if shift > 0 {
        // shift ≤ 60 (Ei), so digit × 2^shift + carry stays far inside a u128.
        let factor = 1u128 << shift;
        let mut carry = 0u128;
        for digit in digits.iter_mut().rev() {
            let v = u128::from(*digit) * factor + carry;
            *digit = (v % 10) as u8;
            carry = v / 10;
        }
        let mut high = Vec::new();
        while carry > 0 {
            high.push((carry % 10) as u8);
            carry /= 10;
        }
        high.reverse();
        high.extend_from_slice(&digits);
        digits = high;
    }
    let to_u128 = |digits: &[u8]| {
        digits.iter().try_fold(0u128, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u128::from(d))
        })
    };
    if exp10 >= 0 {
        let Ok(exp10) = u32::try_from(exp10) else {
            return u128::MAX;
        };
        to_u128(&digits)
            .zip(10u128.checked_pow(exp10))
            .and_then(|(value, factor)| value.checked_mul(factor))
            .unwrap_or(u128::MAX)
    } else {
        let dropped = usize::try_from(exp10.unsigned_abs()).unwrap_or(usize::MAX);
        let kept = digits.len().saturating_sub(dropped);
        let (head, tail) = digits.split_at(kept);
        let round_up = u128::from(tail.iter().any(|&d| d != 0));
        to_u128(head)
            .and_then(|head| head.checked_add(round_up))
            .unwrap_or(u128::MAX)
    }
}

/// The suffix's scale, `None` when the suffix is not one Kubernetes accepts.
fn suffix_scale(suffix: &str) -> Option<Scale> {
    let scale = match suffix {
        "" => Scale::Decimal(0),
        "n" => Scale::Decimal(-9),
        "u" => Scale::Decimal(-6),
        "m" => Scale::Decimal(-3),
        "k" => Scale::Decimal(3),
        "M" => Scale::Decimal(6),
        "G" => Scale::Decimal(9),
        "T" => Scale::Decimal(12),
        "P" => Scale::Decimal(15),
        "E" => Scale::Decimal(18),
        "Ki" => Scale::Binary(10),
        "Mi" => Scale::Binary(20),
        "Gi" => Scale::Binary(30),
        "Ti" => Scale::Binary(40),
        "Pi" => Scale::Binary(50),
        "Ei" => Scale::Binary(60),
        _ => {
            // `e`/`E` then Go's strconv.ParseInt(rest, 10, 64): an optional sign and digits,
            // within int64; then `int32(parsed)`, which keeps the low 32 bits.
            let rest = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let digits = rest
                .strip_prefix('+')
                .or_else(|| rest.strip_prefix('-'))
                .unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Scale::Decimal(rest.parse::<i64>().ok()? as i32)
        }
    };
    Some(scale)
}

/// A memory quantity in bytes, rounded up to a whole byte as Kubernetes does (`Value()`), and
/// saturating at `u64::MAX` (see the module docs).
///
/// ```
/// use memglass_kube::parse_memory;
/// assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
/// assert_eq!(parse_memory("1.5Gi"), Ok(1_610_612_736));
/// assert_eq!(parse_memory("500M"), Ok(500_000_000));
/// assert_eq!(parse_memory("100m"), Ok(1)); // 0.1 byte rounds up
/// assert_eq!(parse_memory("9Ei"), Ok(i64::MAX as u64)); // apimachinery's binary cap
/// assert!(parse_memory("12Q").is_err());
/// ```
pub fn parse_memory(input: &str) -> Result<u64, QuantityError> {
    Ok(Quantity::parse(input)?.ceil_units_saturating())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> u64 {
        match parse_memory(s) {
            Ok(b) => b,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(bytes("128Mi"), 134_217_728);
        assert_eq!(bytes("1Gi"), 1_073_741_824);
        assert_eq!(bytes("100Ki"), 102_400);
        assert_eq!(bytes("2015104Ki"), 2_063_466_496);
        assert_eq!(bytes("1Ti"), 1 << 40);
        assert_eq!(bytes("1Pi"), 1 << 50);
        assert_eq!(bytes("1Ei"), 1 << 60);
        assert_eq!(bytes("500M"), 500_000_000);
        assert_eq!(bytes("1G"), 1_000_000_000);
        assert_eq!(bytes("100k"), 100_000);
        assert_eq!(bytes("2T"), 2_000_000_000_000);
        assert_eq!(bytes("3P"), 3_000_000_000_000_000);
        assert_eq!(bytes("8E"), 8_000_000_000_000_000_000);
        assert_eq!(bytes("12345"), 12_345);
        assert_eq!(bytes("0"), 0);
    }

    #[test]
    fn fractions_and_exponents() {
        assert_eq!(bytes("1.5Gi"), 1_610_612_736);
        assert_eq!(bytes("0.5Gi"), 536_870_912);
        assert_eq!(bytes(".5Gi"), 536_870_912);
        assert_eq!(bytes("1.Gi"), 1 << 30);
        assert_eq!(bytes("1e9"), 1_000_000_000);
        assert_eq!(bytes("1E9"), 1_000_000_000);
        assert_eq!(bytes("1e+3"), 1_000);
        assert_eq!(bytes("12e-1"), 2); // 1.2 bytes round up
        assert_eq!(bytes("1.25e2"), 125);
        assert_eq!(bytes("+64Mi"), 64 << 20);
        assert_eq!(bytes("-0"), 0);
        assert_eq!(bytes("0.0001Ki"), 1); // 0.1024 byte
        assert_eq!(bytes("000000000000000000000000000000000000000001"), 1);
    }

    #[test]
    fn milli_and_smaller_round_up_to_a_byte() {
        assert_eq!(bytes("100m"), 1);
        assert_eq!(bytes("1000m"), 1);
        assert_eq!(bytes("1001m"), 2);
        assert_eq!(bytes("129500000000m"), 129_500_000); // kubectl's normalised form
        assert_eq!(bytes("1u"), 1);
        assert_eq!(bytes("1n"), 1);
        assert_eq!(bytes("1e-30"), 1);
        assert_eq!(bytes("0m"), 0);
    }

    #[test]
    fn cpu_values_stay_exact() {
        let q = |s| Quantity::parse(s).map(Quantity::nanos);
        assert_eq!(q("100m"), Ok(100_000_000));
        assert_eq!(q("0.1"), Ok(100_000_000));
        assert_eq!(q("2"), Ok(2_000_000_000));
        assert_eq!(q("250m"), Ok(250_000_000));
        assert_eq!(
            Quantity::parse("0.5").map(|v| v.to_string()),
            Ok("0.5".into())
        );
        let sum: Quantity = ["100m", "0.9"]
            .iter()
            .filter_map(|s| Quantity::parse(s).ok())
            .sum();
        assert_eq!(sum, Quantity::from_units(1));
    }

    #[test]
    fn invalid_strings_name_the_offender() {
        for (input, reason) in [
            ("", "empty"),
            ("12Q", "unknown suffix"),
            ("1gi", "unknown suffix"),
            ("1K", "unknown suffix"),
            ("1KiB", "unknown suffix"),
            ("1 Gi", "unknown suffix"),
            (" 1Gi", "unknown suffix"),
            ("1e", "unknown suffix"),
            ("1e3.5", "unknown suffix"),
            ("1ee3", "unknown suffix"),
            ("1..5", "unknown suffix"),
            ("0x10", "unknown suffix"),
            ("-1Gi", "negative"),
            ("1e99999999999999999999", "unknown suffix"),
        ] {
            let err = match Quantity::parse(input) {
                Ok(q) => panic!("{input:?} parsed as {q}"),
                Err(e) => e,
            };
            assert_eq!(err.input(), input);
            assert_eq!(err.reason(), reason, "{input:?}");
        }
    }

    #[test]
    fn huge_values_saturate_instead_of_failing() {
        let nanos = |s: &str| Quantity::parse(s).map(Quantity::nanos);
        // Beyond u64 bytes: kept exact while they fit the nano-unit u128, saturated beyond.
        assert_eq!(bytes("20E"), u64::MAX);
        assert_eq!(nanos("20E"), Ok(20 * 10u128.pow(27)));
        assert_eq!(nanos("1e100"), Ok(u128::MAX));
        assert_eq!(
            nanos("99999999999999999999999999999999999999999"),
            Ok(u128::MAX)
        );
        // Any number of digits, as inf.Dec takes them; only the rounding sees the tail.
        assert_eq!(
            nanos("1.0000000000000000000000000000000000000000000001"),
            Ok(1_000_000_001)
        );
        assert_eq!(
            nanos("100000000000000000000000000000000000000000000000e-45"),
            Ok(100 * 1_000_000_000)
        );
        // int32(exponent): 2^32 truncates to 0.
        assert_eq!(bytes("1e4294967296"), 1);
        // Binary suffixes are capped at 2^63-1 (apimachinery's maxAllowed), however written.
        assert_eq!(bytes("99999999999999999999Ei"), i64::MAX as u64);
        assert_eq!(bytes("16Ei"), i64::MAX as u64);
        assert_eq!(bytes("8Ei"), i64::MAX as u64, "2^63 is past the cap");
        assert_eq!(bytes("7.99Ei"), 9_211_842_821_808_707_339);
    }

    /// `staging/src/k8s.io/apimachinery/pkg/api/resource/quantity_test.go`, the tables that
    /// decide a memory quantity's bytes: `TestQuantityParse` (its `table`, each row also with
    /// an explicit `+`, and its `invalid` list), `TestParseQuantityString` (only what
    /// `ParseQuantity` makes of each input: a missing number is zero), `TestQuantityParseZero`
    /// and the non-negative rows of `TestParseQuantity` (19- and 20-digit values around 2^63).
    /// Expected values are written as the exact nano count of the Go `Quantity`.
    #[test]
    fn apimachinery_quantity_tables() {
        const N: u128 = 1_000_000_000;
        // (test, input, expected value × 10⁹)
        let rows: &[(&str, &str, u128)] = &[
            ("TestQuantityParseZero", "0", 0),
            ("TestQuantityParse", "0", 0),
            ("TestQuantityParse", "0n", 0),
            ("TestQuantityParse", "0u", 0),
            ("TestQuantityParse", "0m", 0),
            ("TestQuantityParse", "0Ki", 0),
            ("TestQuantityParse", "0k", 0),
            ("TestQuantityParse", "0Mi", 0),
            ("TestQuantityParse", "0M", 0),
            ("TestQuantityParse", "0Gi", 0),
            ("TestQuantityParse", "0G", 0),
            ("TestQuantityParse", "0Ti", 0),
            ("TestQuantityParse", "0T", 0),
            ("TestQuantityParse", "1", N),
            ("TestQuantityParse", "1Ki", 1024 * N),
            ("TestQuantityParse", "8Ki", 8 * 1024 * N),
            ("TestQuantityParse", "7Mi", 7 * (1 << 20) * N),
            ("TestQuantityParse", "6Gi", 6 * (1 << 30) * N),
            ("TestQuantityParse", "5Ti", 5 * (1 << 40) * N),
            ("TestQuantityParse", "4Pi", 4 * (1 << 50) * N),
            ("TestQuantityParse", "3Ei", 3 * (1 << 60) * N),
            ("TestQuantityParse", "10Ti", 10 * (1 << 40) * N),
            ("TestQuantityParse", "100Ti", 100 * (1 << 40) * N),
            ("TestQuantityParse", "5n", 5),
            ("TestQuantityParse", "4u", 4_000),
            ("TestQuantityParse", "3m", 3_000_000),
            ("TestQuantityParse", "9", 9 * N),
            ("TestQuantityParse", "8k", 8_000 * N),
            ("TestQuantityParse", "50k", 50_000 * N),
            ("TestQuantityParse", "7M", 7_000_000 * N),
            ("TestQuantityParse", "6G", 6_000_000_000 * N),
            ("TestQuantityParse", "5T", 5 * 10u128.pow(12) * N),
            ("TestQuantityParse", "40T", 4 * 10u128.pow(13) * N),
            ("TestQuantityParse", "300T", 3 * 10u128.pow(14) * N),
            ("TestQuantityParse", "2P", 2 * 10u128.pow(15) * N),
            ("TestQuantityParse", "1E", 10u128.pow(18) * N),
            ("TestQuantityParse", "1E-3", 1_000_000),
            ("TestQuantityParse", "1e3", 1_000 * N),
            ("TestQuantityParse", "1E6", 10u128.pow(6) * N),
            ("TestQuantityParse", "1e9", 10u128.pow(9) * N),
            ("TestQuantityParse", "1E12", 10u128.pow(12) * N),
            ("TestQuantityParse", "1e15", 10u128.pow(15) * N),
            ("TestQuantityParse", "1E18", 10u128.pow(18) * N),
            ("TestQuantityParse", "1e14", 10u128.pow(14) * N),
            ("TestQuantityParse", "1e13", 10u128.pow(13) * N),
            ("TestQuantityParse", "100.035k", 100_035 * N),
            ("TestQuantityParse", "0.001", 1_000_000),
            ("TestQuantityParse", "0.0005k", 500_000_000),
            ("TestQuantityParse", "0.005", 5_000_000),
            ("TestQuantityParse", "0.05", 50_000_000),
            ("TestQuantityParse", "0.5", 500_000_000),
            ("TestQuantityParse", "0.00050k", 500_000_000),
            ("TestQuantityParse", "0.00500", 5_000_000),
            ("TestQuantityParse", "0.05000", 50_000_000),
            ("TestQuantityParse", "0.50000", 500_000_000),
            ("TestQuantityParse", "0.5e0", 500_000_000),
            ("TestQuantityParse", "0.5e-1", 50_000_000),
            ("TestQuantityParse", "0.5e-2", 5_000_000),
            ("TestQuantityParse", "10.035M", 10_035_000 * N),
            ("TestQuantityParse", "1.2e3", 1_200 * N),
            ("TestQuantityParse", "1.3E+6", 1_300_000 * N),
            ("TestQuantityParse", "1.40e9", 1_400_000_000 * N),
            ("TestQuantityParse", "1.53E12", 153 * 10u128.pow(10) * N),
            ("TestQuantityParse", "1.6e15", 16 * 10u128.pow(14) * N),
            ("TestQuantityParse", "1.7E18", 17 * 10u128.pow(17) * N),
            ("TestQuantityParse", "9.01", 9_010_000_000),
            ("TestQuantityParse", "8.1k", 8_100 * N),
            ("TestQuantityParse", "7.123456M", 7_123_456 * N),
            ("TestQuantityParse", "6.987654321G", 6_987_654_321 * N),
            ("TestQuantityParse", "5.444T", 5_444 * 10u128.pow(9) * N),
            ("TestQuantityParse", "40.1T", 401 * 10u128.pow(11) * N),
            ("TestQuantityParse", "300.2T", 3_002 * 10u128.pow(11) * N),
            ("TestQuantityParse", "2.5P", 25 * 10u128.pow(14) * N),
            ("TestQuantityParse", "1.01E", 101 * 10u128.pow(16) * N),
            // "Things that saturate/round"
            ("TestQuantityParse", "3.001n", 4),
            ("TestQuantityParse", "1.1E-9", 2),
            ("TestQuantityParse", "0.0000000001", 1),
            ("TestQuantityParse", "0.0000000005", 1),
            ("TestQuantityParse", "0.00000000050", 1),
            ("TestQuantityParse", "0.5e-9", 1),
            ("TestQuantityParse", "0.9n", 1),
            ("TestQuantityParse", "0.00000012345", 124),
            ("TestQuantityParse", "0.00000012354", 124),
            ("TestQuantityParse", "9Ei", i64::MAX as u128 * N),
            (
                "TestQuantityParse",
                "9223372036854775807Ki",
                i64::MAX as u128 * N,
            ),
            ("TestQuantityParse", "12E", 12 * 10u128.pow(18) * N),
            // "We'll accept fractional binary stuff, too."
            ("TestQuantityParse", "100.035Ki", 102_435_840 * N / 1000),
            ("TestQuantityParse", "0.5Mi", 524_288 * N),
            ("TestQuantityParse", "0.05Gi", 53_687_091_200_000_000),
            ("TestQuantityParse", "0.025Ti", 27_487_790_694_400_000_000),
            // "Things written by trolls"
            ("TestQuantityParse", "0.000000000001Ki", 2),
            ("TestQuantityParse", ".001", 1_000_000),
            ("TestQuantityParse", ".0001k", 100_000_000),
            ("TestQuantityParse", "1.", N),
            ("TestQuantityParse", "1.G", 10u128.pow(9) * N),
            // parseQuantityString's splits, as ParseQuantity values them.
            (
                "TestParseQuantityString",
                "0.025Ti",
                27_487_790_694_400_000_000,
            ),
            (
                "TestParseQuantityString",
                "1.025Ti",
                1_126_999_418_470_400_000_000,
            ),
            ("TestParseQuantityString", ".", 0),
            ("TestParseQuantityString", "-.", 0),
            ("TestParseQuantityString", "1E-3", 1_000_000),
            // TestParseQuantity, the non-negative inputs (wantAsDec).
            (
                "TestParseQuantity",
                "999999999999999999",
                999_999_999_999_999_999 * N,
            ),
            (
                "TestParseQuantity",
                "999999999999999999.0",
                999_999_999_999_999_999 * N,
            ),
            (
                "TestParseQuantity",
                "999999999999999999.1",
                999_999_999_999_999_999_100_000_000,
            ),
            (
                "TestParseQuantity",
                "9999999999999999999",
                9_999_999_999_999_999_999 * N,
            ),
            ("TestParseQuantity", "1E", 10u128.pow(18) * N),
            (
                "TestParseQuantity",
                "1000000000000000000",
                10u128.pow(18) * N,
            ),
            (
                "TestParseQuantity",
                "9999999999999999999.0",
                9_999_999_999_999_999_999 * N,
            ),
            ("TestParseQuantity", "1.0E", 10u128.pow(18) * N),
            (
                "TestParseQuantity",
                "1000000000000000000.0",
                10u128.pow(18) * N,
            ),
            (
                "TestParseQuantity",
                "9999999999999999999000m",
                9_999_999_999_999_999_999 * N,
            ),
            (
                "TestParseQuantity",
                "9999999999999999999.1",
                9_999_999_999_999_999_999_100_000_000,
            ),
            (
                "TestParseQuantity",
                "1.0000000000000000001E",
                1_000_000_000_000_000_000_100_000_000,
            ),
            (
                "TestParseQuantity",
                "1000000000000000000.1",
                1_000_000_000_000_000_000_100_000_000,
            ),
            (
                "TestParseQuantity",
                "1.000000000000000001E",
                1_000_000_000_000_000_001 * N,
            ),
            (
                "TestParseQuantity",
                "1000000000000000001",
                1_000_000_000_000_000_001 * N,
            ),
            ("TestParseQuantity", "10E", 10u128.pow(19) * N),
            (
                "TestParseQuantity",
                "10000000000000000000",
                10u128.pow(19) * N,
            ),
            ("TestParseQuantity", "10.0E", 10u128.pow(19) * N),
            (
                "TestParseQuantity",
                "10000000000000000000.0",
                10u128.pow(19) * N,
            ),
            (
                "TestParseQuantity",
                "10000000000000000000000m",
                10u128.pow(19) * N,
            ),
            (
                "TestParseQuantity",
                "10.0000000000000000001E",
                10u128.pow(28) + 100_000_000,
            ),
            (
                "TestParseQuantity",
                "10000000000000000000.1",
                10u128.pow(28) + 100_000_000,
            ),
            (
                "TestParseQuantity",
                "10.000000000000000001E",
                (10u128.pow(19) + 1) * N,
            ),
            (
                "TestParseQuantity",
                "10000000000000000001",
                (10u128.pow(19) + 1) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775806",
                (i64::MAX as u128 - 1) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775806.0",
                (i64::MAX as u128 - 1) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775806000m",
                (i64::MAX as u128 - 1) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775806.1",
                (i64::MAX as u128 - 1) * N + 100_000_000,
            ),
            (
                "TestParseQuantity",
                "9223372036854775807",
                i64::MAX as u128 * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775807.0",
                i64::MAX as u128 * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775807000m",
                i64::MAX as u128 * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775807.1",
                i64::MAX as u128 * N + 100_000_000,
            ),
            (
                "TestParseQuantity",
                "9223372036854775808",
                (1u128 << 63) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775808.0",
                (1u128 << 63) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775808000m",
                (1u128 << 63) * N,
            ),
            (
                "TestParseQuantity",
                "9223372036854775808.1",
                (1u128 << 63) * N + 100_000_000,
            ),
        ];
        for &(test, input, nanos) in rows {
            if test != "TestQuantityParse" {
                // The other tables take each input as written.
                assert_eq!(
                    Quantity::parse(input).map(Quantity::nanos),
                    Ok(nanos),
                    "{test} {input:?}"
                );
                continue;
            }
            for written in [input.to_string(), format!("+{input}")] {
                match Quantity::parse(&written) {
                    Ok(q) => assert_eq!(q.nanos(), nanos, "{test} {written:?}"),
                    Err(e) => panic!("{test} {written:?}: {e}"),
                }
            }
            // "Try the negative version of everything": only zero is a valid memglass value.
            let negative = Quantity::parse(&format!("-{input}"));
            if nanos == 0 {
                assert_eq!(negative, Ok(Quantity::ZERO), "{test} -{input}");
            } else {
                assert!(negative.is_err(), "{test} -{input}");
            }
        }
        // TestQuantityParse's `invalid` list, and its empty-string check.
        for input in [
            "", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
            " 1", "1 ",
        ] {
            assert!(
                Quantity::parse(input).is_err(),
                "TestQuantityParse invalid {input:?}"
            );
        }
    }
}
