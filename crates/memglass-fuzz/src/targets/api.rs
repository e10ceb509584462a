//! The agent's API query strings (`/api/v1/...?from=&to=&range=&path=&limit=`).

use std::collections::HashMap;
use std::time::Duration;

use memglass_agent::api::params::{self, TimeRange};

use crate::Target;

/// Query strings as axum's `Query` extractor decodes them, then the parameter parsers.
pub static API_QUERY: Target = Target {
    name: "api-query",
    about:
        "API query strings: serde_urlencoded (axum Query), TimeRange::parse_at, cgroup_path, limit",
    seeds: |_| {
        [
            "",
            "range=1h",
            "range=7d&resolution=1m",
            "from=1700000000&to=1700003600",
            "from=2024-11-25T07:50:37Z&to=2024-11-25T08:50:37Z&resolution=raw",
            "to=2024-11-25T07:50:37.123%2B02:00&range=15m",
            "path=/kubepods.slice/kubepods-burstable.slice&range=6h",
            "path=%2Fkubepods%2Fburstable&limit=10",
            "limit=500&range=30d",
            "uid=0330b2c1-a15b-4cdd-b5e5-72d4a90bee82&range=1h",
            "namespace=shop&name=web-0&from=0&to=86400",
            "cgroup=/kubepods.slice&min_severity=warning&pod=shop/web-0",
        ]
        .iter()
        .map(|q| q.as_bytes().to_vec())
        .collect()
    },
    tokens: &[
        "&",
        "=",
        "from=",
        "to=",
        "range=",
        "resolution=",
        "path=",
        "limit=",
        "raw",
        "1m",
        "1h",
        "7d",
        "366d",
        "367d",
        "1y",
        "100000000000y",
        "0s",
        "1ns",
        "18446744073709551615s",
        "9223372036854775807",
        "-9223372036854775808",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "2024-02-30T25:61:61Z",
        "+",
        "%",
        "%2F",
        "%ZZ",
        "%FF",
        "%C3%A9",
        "/..",
        "/../",
        "..",
        "//",
    ],
    mutate: None,
    run: |input| {
        let Ok(query) = serde_urlencoded::from_bytes::<HashMap<String, String>>(input) else {
            return;
        };
        for now in [1_732_521_037, 4_102_444_800] {
            if let Ok(range) = TimeRange::parse_at(&query, now, Duration::from_secs(86_400)) {
                std::hint::black_box(range.json());
            }
        }
        let _ = params::cgroup_path(&query);
        let _ = params::limit(&query, 500);
        let _ = params::limit(&query, 200);
    },
};
