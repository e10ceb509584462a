//! Strict validators for the two identifiers a cgroup path can carry: Kubernetes pod UIDs and
//! container ids. Being strict here is what keeps look-alike directory names (systemd mount
//! units that embed ids, hand-made `pod123` directories, truncated ids) from being read as
//! workloads.

/// Length of a container id as docker, containerd's CRI plugin, CRI-O, podman and nerdctl
/// generate it: 32 random bytes, hex-encoded.
const CONTAINER_ID_LEN: usize = 64;

/// Returns whether `s` is a full container id: exactly 64 lower-case hex digits.
///
/// Every runtime memglass recognises generates ids with Go's `hex.EncodeToString` (or the
/// equivalent), which is lower-case, so an upper-case or shorter string is not one of theirs.
pub(crate) fn is_container_id(s: &str) -> bool {
    s.len() == CONTAINER_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses the UID part of a pod cgroup name and returns it in canonical form (dashed, lower
/// case), or `None` if it is not a pod UID.
///
/// Accepted shapes:
/// - a UUID, `8-4-4-4-12` hex digits, with `sep` between the groups (`-` in the cgroupfs
///   driver's `pod<uid>`, `_` in the systemd driver's `…-pod<uid>.slice`, where kubelet escapes
///   dashes because systemd reads `-` as a slice hierarchy step); the API server generates these;
/// - 32 hex digits with no separator: the UID kubelet gives a static pod (an MD5 hex digest of
///   the manifest, `pkg/kubelet/config/common.go`), e.g. kube-apiserver on kubeadm nodes.
///
/// Hex digits may be upper case (kubelet copies the UID into the name verbatim, so a static
/// manifest with a hand-written upper-case `metadata.uid` yields an upper-case directory); the
/// result is lower-cased. Generated UIDs are always lower case already.
pub(crate) fn parse_pod_uid(s: &str, sep: u8) -> Option<String> {
    let bytes = s.as_bytes();
    let valid = match bytes.len() {
        32 => bytes.iter().all(u8::is_ascii_hexdigit),
        36 => bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == sep,
            _ => b.is_ascii_hexdigit(),
        }),
        _ => false,
    };
    if !valid {
        return None;
    }
    Some(
        bytes
            .iter()
            .map(|&b| {
                if b == sep {
                    '-'
                } else {
                    char::from(b.to_ascii_lowercase())
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        let id = "a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937";
        assert!(is_container_id(id));
        assert!(!is_container_id(&id[1..]), "63 digits");
        assert!(!is_container_id(&format!("{id}0")), "65 digits");
        assert!(!is_container_id(&id.to_uppercase()), "upper case");
        assert!(!is_container_id(&id.replace('a', "g")), "not hex");
        assert!(!is_container_id(""));
    }

    #[test]
    fn pod_uids() {
        let dashed = "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82";
        assert_eq!(parse_pod_uid(dashed, b'-').as_deref(), Some(dashed));
        assert_eq!(
            parse_pod_uid("0330b2c1_a15b_4cdd_b5e5_72d4a90bee82", b'_').as_deref(),
            Some(dashed)
        );
        // The wrong separator for the driver is not a UID.
        assert_eq!(parse_pod_uid(dashed, b'_'), None);
        assert_eq!(
            parse_pod_uid("0330b2c1_a15b_4cdd_b5e5_72d4a90bee82", b'-'),
            None
        );
        // Separators in the wrong place.
        assert_eq!(
            parse_pod_uid("0330b2c1a-15b-4cdd-b5e5-72d4a90bee82", b'-'),
            None
        );
        // Static pod UIDs: 32 hex digits.
        let hash = "8daa50c3a64c9ff60bb9eab7b44b56fd";
        assert_eq!(parse_pod_uid(hash, b'_').as_deref(), Some(hash));
        assert_eq!(parse_pod_uid(hash, b'-').as_deref(), Some(hash));
        // Upper case is accepted and lower-cased.
        assert_eq!(
            parse_pod_uid(&dashed.to_uppercase(), b'-').as_deref(),
            Some(dashed)
        );
        // Anything else is not.
        for bad in [
            "",
            "12345",
            "0330b2c1-a15b-4cdd-b5e5-72d4a90bee8z",
            "not-a-uid",
        ] {
            assert_eq!(parse_pod_uid(bad, b'-'), None, "{bad}");
        }
    }
}
