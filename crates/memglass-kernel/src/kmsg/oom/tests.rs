//! Unit tests of the assembler on small hand-cut pieces of real reports; the corpus of
//! whole reports is in `tests/oom_corpus.rs`.

use super::*;
use crate::kmsg::saved;

fn kills(text: &str) -> Vec<OomKill> {
    parse_lines(&saved::parse(text, 2024))
}

#[test]
fn nothing_in_empty_or_unrelated_text() {
    assert!(kills("").is_empty());
    assert!(kills("hello\nworld\n[ 1.0] usb 1-1: new device\n").is_empty());
}

/// A pod-limit kill recorded from a RHEL 7 node (fixtures/oom), seen by agents whose
/// roots are subtrees of that node's hierarchy.
#[test]
fn a_kill_within_a_subtree_has_paths_relative_to_it() {
    let text = include_str!("../../../../../fixtures/oom/el7-3.10.0-514-pod-kmem-messages.txt");
    let kill = kills(text).into_iter().next().expect("one kill");
    let pod = "/kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda";
    let container = "bbd5e4b5f9c13666dd0ec7ff7afb2c4c2b0ede40a4adf1de43cc31c606f283f5";
    assert_eq!(kill.oom_memcg.as_deref(), Some(pod));

    // The whole hierarchy: nothing changes.
    assert_eq!(kill.clone().within("/"), Some(kill.clone()));
    // Rooted at /kubepods: the pod's limit, relative.
    let seen = kill
        .clone()
        .within("/kubepods")
        .expect("the victim is inside");
    let relative = "/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda";
    assert_eq!(seen.oom_memcg.as_deref(), Some(relative));
    assert_eq!(
        seen.task_memcg.as_deref(),
        Some(format!("{relative}/{container}").as_str())
    );
    assert!(seen
        .memcg_stats
        .iter()
        .all(|s| !s.path.starts_with("/kubepods")));
    // Rooted at the container: the limit hit was above it, so it is that node's own.
    let seen = kill
        .clone()
        .within(&format!("{pod}/{container}"))
        .expect("the victim is the root");
    assert_eq!(seen.task_memcg.as_deref(), Some("/"));
    assert_eq!(seen.oom_memcg.as_deref(), Some("/"));
    // Elsewhere, or a mere name prefix: not this node's kill.
    assert_eq!(kill.clone().within("/system.slice"), None);
    assert_eq!(kill.clone().within("/kubepods/burst"), None);
    let mut unknown = kill;
    unknown.task_memcg = None;
    assert_eq!(unknown.within("/kubepods"), None);
}
