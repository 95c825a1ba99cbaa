//! Mentions of a nick in chat text: the nick as a whole word, case-insensitively (`bob`,
//! `Bob:` and `@BOB` mention bob; `bobby` and `kebob` do not).

use crate::types::Nick;
use core::ops::Range;

/// Whether `c` can be part of a nick (see [`Nick`]): an occurrence is a whole word when the
/// bytes around it cannot.
fn nick_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'[' | b']' | b'{' | b'}' | b'^' | b'|')
}

/// Where `nick` is mentioned in `text`, as byte ranges (always on char boundaries: a nick is
/// ASCII), in order.
pub fn mention_spans(text: &str, nick: &Nick) -> Vec<Range<usize>> {
    let hay = text.as_bytes();
    let needle = nick.as_str().as_bytes();
    let n = needle.len();
    let mut out = Vec::new();
    if n == 0 || hay.len() < n {
        return out;
    }
    let mut i = 0;
    while i + n <= hay.len() {
        let whole = hay[i..i + n].eq_ignore_ascii_case(needle)
            && (i == 0 || !nick_byte(hay[i - 1]))
            && hay.get(i + n).is_none_or(|&c| !nick_byte(c));
        if whole {
            out.push(i..i + n);
            i += n;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether `text` mentions `nick`.
pub fn mentions(text: &str, nick: &Nick) -> bool {
    !mention_spans(text, nick).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    #[test]
    fn whole_words_in_any_case() {
        let bob = nick("bob");
        for yes in [
            "bob",
            "hi bob",
            "Bob: look",
            "@BOB!",
            "(bob)",
            "ask bob.",
            "é bob é",
        ] {
            assert!(mentions(yes, &bob), "{yes:?}");
        }
        for no in ["bobby", "kebob", "bob_", "[bob]", "b o b", "", "bo"] {
            assert!(!mentions(no, &bob), "{no:?}");
        }
        assert_eq!(mention_spans("bob and BOB, bobby", &bob), [0..3, 8..11]);
        // A nick with brackets is found as typed, and next to other punctuation.
        let odd = nick("[x]");
        let spans = mention_spans("hey [x], and [X]y", &odd);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0], 4..7);
    }
}
