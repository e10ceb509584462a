//! Memory limits with the kernel's encodings of "none" removed.

/// A memory limit: a byte count, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Limit {
    /// No limit (v2 `max`, v1's page-rounded LONG_MAX, or a root cgroup without a file).
    Unlimited,
    /// A limit in bytes.
    Bytes(u64),
}

impl Limit {
    /// The limit in bytes, `None` when unlimited.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Bytes(bytes) => Some(bytes),
        }
    }

    /// Decode a cgroup v1 `*_limit_in_bytes` value.
    ///
    /// v1 prints "no limit" as PAGE_COUNTER_MAX × PAGE_SIZE, which is LONG_MAX rounded down
    /// to the page size (9223372036854771712 with 4 KiB pages); kernels before 3.19
    /// printed LLONG_MAX or ULLONG_MAX. Anything within 256 KiB of LONG_MAX or above is
    /// therefore unlimited, whatever the page size of the machine that wrote it (a recorded
    /// arm64 64 KiB-page tree decodes the same here).
    pub fn from_v1(value: u64) -> Limit {
        const UNLIMITED_FLOOR: u64 = (i64::MAX as u64) & !((256 << 10) - 1);
        if value >= UNLIMITED_FLOOR {
            Limit::Unlimited
        } else {
            Limit::Bytes(value)
        }
    }

    /// Decode a cgroup v2 limit (`None` = the word `max`).
    pub fn from_v2(value: Option<u64>) -> Limit {
        value.map_or(Limit::Unlimited, Limit::Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_unlimited_encodings() {
        assert_eq!(Limit::from_v1(9223372036854771712), Limit::Unlimited); // 4 KiB pages
        assert_eq!(Limit::from_v1(9223372036854710272), Limit::Unlimited); // 64 KiB pages
        assert_eq!(Limit::from_v1(i64::MAX as u64), Limit::Unlimited);
        assert_eq!(Limit::from_v1(u64::MAX), Limit::Unlimited);
        assert_eq!(Limit::from_v1(536870912), Limit::Bytes(536870912));
        assert_eq!(Limit::from_v2(None), Limit::Unlimited);
        assert_eq!(Limit::from_v2(Some(4096)).bytes(), Some(4096));
    }
}
