//! Kubernetes Events on pods (events.k8s.io/v1), posted from the watch thread's runtime
//! through kube-rs' `Recorder`: a repeat of the same reason on the same pod within its
//! 6-minute cache is a PATCH of the first event's series, not a new event.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};

use crate::error::causes;
use crate::watch::Inner;

/// How long one event POST or PATCH may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `reportingController` of memglass's events.
pub const REPORTING_CONTROLLER: &str = "memglass";

/// One event about a pod, as memglass posts it (events.k8s.io/v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's UID.
    pub uid: String,
    /// `Warning` when true, else `Normal`.
    pub warning: bool,
    /// `reason` (PascalCase, at most 128 characters), e.g. `MemglassOOMKill`.
    pub reason: String,
    /// `action` (PascalCase), e.g. `Explain`.
    pub action: String,
    /// `note`: the message `kubectl describe` shows (cut to 1 KiB).
    pub note: String,
}

/// Post queued events one at a time through kube-rs' recorder (which turns a repeat of
/// the same reason on the same pod within its 6-minute cache into a series PATCH).
pub(crate) async fn post_events(
    recorder: Option<Recorder>,
    mut queue: tokio::sync::mpsc::Receiver<PodEvent>,
    inner: &Inner,
) {
    let Some(recorder) = recorder else {
        return std::future::pending().await;
    };
    while let Some(event) = queue.recv().await {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(event.namespace.clone()),
            name: Some(event.name.clone()),
            uid: Some(event.uid.clone()),
            ..ObjectReference::default()
        };
        let kube_event = KubeEvent {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason,
            note: Some(truncate(event.note, 1024)),
            action: event.action,
            secondary: None,
        };
        let outcome =
            tokio::time::timeout(EVENT_TIMEOUT, recorder.publish(&kube_event, &reference)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(causes(&error)),
            Err(_) => Some(format!("no answer within {EVENT_TIMEOUT:?}")),
        };
        inner.update(|s| match error {
            None => s.events_posted += 1,
            Some(error) => {
                s.events_failed += 1;
                s.last_event_error = Some(format!(
                    "event {} on pod {}/{}: {error}",
                    kube_event.reason, event.namespace, event.name
                ));
            }
        });
    }
}

/// At most `max` bytes, cut at a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("abc".into(), 1024), "abc");
        assert_eq!(truncate("aé".into(), 2), "a");
        assert_eq!(truncate("x".repeat(2000), 1024).len(), 1024);
    }
}
