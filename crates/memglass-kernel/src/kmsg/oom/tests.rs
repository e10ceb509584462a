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
