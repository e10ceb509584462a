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
//! A value is kept as nano-units (value × 10⁹) in a `u128`, so every quantity a cluster can
//! hold (up to `Ei` and beyond `u64`) is exact, sums of them stay exact, and a fraction below
//! a nano-unit is rounded up, as Kubernetes rounds. [`parse_memory`] turns a memory quantity
//! into bytes, rounding a fractional byte up to the next whole byte (`Quantity.Value()`), so
//! `100m` (0.1 byte) is 1 byte and `0.5Gi` is 536870912.

use std::fmt;

/// Nano-units per unit.
const NANO: u128 = 1_000_000_000;

/// A non-negative resource quantity, exact to a nano-unit (fractions below are rounded up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: u128,
}

/// A quantity string that is not a valid non-negative Kubernetes quantity, or that does not fit.
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
    /// × 10^exp.
    Decimal(i64),
    /// × 2^exp.
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
    /// capacity or overhead may be negative.
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
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(err("no number"));
        }
        let scale = suffix_scale(&input[pos..]).ok_or_else(|| err("unknown suffix"))?;

        // mantissa × 10^-frac_len, with leading zeros dropped so long zero runs still fit.
        let mut mantissa: u128 = 0;
        for digit in int_digits.bytes().chain(frac_digits.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or_else(|| err("too many digits"))?;
        }
        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| err("too many digits"))?;
        let too_large = || err("too large");
        let nanos = match scale {
            Scale::Decimal(exp) => {
                let exp10 = exp
                    .checked_sub(frac_len)
                    .and_then(|e| e.checked_add(9))
                    .ok_or_else(too_large)?;
                scale_pow10(mantissa, exp10).ok_or_else(too_large)?
            }
            Scale::Binary(exp2) => {
                let scaled = 1u128
                    .checked_shl(exp2)
                    .and_then(|factor| mantissa.checked_mul(factor))
                    .ok_or_else(too_large)?;
                scale_pow10(scaled, 9 - frac_len).ok_or_else(too_large)?
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

/// `value × 10^exp10`, rounded up when `exp10` is negative; `None` on overflow.
fn scale_pow10(value: u128, exp10: i64) -> Option<u128> {
    if value == 0 {
        return Some(0);
    }
    if exp10 >= 0 {
        let factor = 10u128.checked_pow(u32::try_from(exp10).ok()?)?;
        value.checked_mul(factor)
    } else {
        match 10u128.checked_pow(u32::try_from(exp10.unsigned_abs()).ok()?) {
            Some(divisor) => Some(value.div_ceil(divisor)),
            // The divisor exceeds any u128 value: a positive fraction below one nano rounds up.
            None => Some(1),
        }
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
            // `e`/`E` followed by a signed integer (Go's strconv.ParseInt: optional sign, digits).
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
            Scale::Decimal(rest.parse::<i64>().ok()?)
        }
    };
    Some(scale)
}

/// A memory quantity in bytes, rounded up to a whole byte as Kubernetes does (`Value()`).
///
/// ```
/// use memglass_kube::parse_memory;
/// assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
/// assert_eq!(parse_memory("1.5Gi"), Ok(1_610_612_736));
/// assert_eq!(parse_memory("500M"), Ok(500_000_000));
/// assert_eq!(parse_memory("100m"), Ok(1)); // 0.1 byte rounds up
/// assert!(parse_memory("12Q").is_err());
/// ```
pub fn parse_memory(input: &str) -> Result<u64, QuantityError> {
    Quantity::parse(input)?
        .ceil_units()
        .ok_or_else(|| QuantityError::new(input, "more than 2^64-1 bytes"))
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
            ("Mi", "no number"),
            (".", "no number"),
            ("12Q", "unknown suffix"),
            ("1gi", "unknown suffix"),
            ("1K", "unknown suffix"),
            ("1KiB", "unknown suffix"),
            ("1 Gi", "unknown suffix"),
            (" 1Gi", "no number"),
            ("1e", "unknown suffix"),
            ("1e3.5", "unknown suffix"),
            ("1ee3", "unknown suffix"),
            ("1..5", "unknown suffix"),
            ("0x10", "unknown suffix"),
            ("-1Gi", "negative"),
            ("1e99999999999999999999", "unknown suffix"),
            ("1e100", "too large"),
            ("99999999999999999999Ei", "too large"),
            (
                "99999999999999999999999999999999999999999",
                "too many digits",
            ),
        ] {
            let err = match Quantity::parse(input) {
                Ok(q) => panic!("{input:?} parsed as {q}"),
                Err(e) => e,
            };
            assert_eq!(err.input(), input);
            assert_eq!(err.reason(), reason, "{input:?}");
        }
        let too_big = parse_memory("20E").map_err(|e| e.to_string());
        assert_eq!(
            too_big,
            Err("invalid quantity \"20E\": more than 2^64-1 bytes".into())
        );
    }
}
