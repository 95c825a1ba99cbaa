//! How a search reads text: the one rule shared by the store's search index (SQLite FTS5's
//! `unicode61` tokenizer, which splits at anything but letters, digits and private-use
//! characters) and the memory-only search of a server without a store (`hub::past`), so both
//! find the same lines.
//!
//! `unicode61` alone takes a run of letters for one word. That suits scripts that put spaces
//! between words, and fails those that do not: `日本語テキスト` would be one word, and
//! `テキスト` would find nothing in it. And it drops emoji (symbols, not letters), so `🎉`
//! found nothing at all. [`searchable`] sets each character of those scripts, and each emoji,
//! apart as a word of its own, both in the lines indexed and in the words searched for; a
//! search word is a phrase of its words side by side, so `テキスト` is the phrase `テ キ ス ト`
//! and finds `日本語テキスト`, as a substring search would (what CJK search engines without a
//! dictionary do). An emoji becomes a private-use character standing for it (which the
//! tokenizer keeps as a word): `great🎉` is `great` and `🎉`. A private-use character a
//! person typed (a font's icon) that could be taken for a stand-in is written after
//! U+F8FF, so `\u{E000}` typed is the word `\u{F8FF}\u{E000}`, never the emoji that
//! `\u{E000}` stands in for.

use std::borrow::Cow;

/// The Basic Multilingual Plane's private use area, where emoji's stand-ins are.
const PRIVATE_USE: std::ops::RangeInclusive<char> = '\u{E000}'..='\u{F8FF}';

/// Where emoji's stand-ins start: the start of [`PRIVATE_USE`].
const STAND_INS: u32 = 0xE000;

/// Written before a typed private-use character that is a stand-in, or is itself: the last of
/// [`PRIVATE_USE`], outside the stand-ins. Each such character becomes two, both word
/// characters, so the text indexed tells a typed one from an emoji's stand-in, and reads back
/// one way only.
const ESCAPE: char = '\u{F8FF}';

/// The emoji blocks given stand-ins, each `(first, last)`, laid end to end from [`STAND_INS`]
/// (3,776 characters of the area's 6,400): Miscellaneous Technical (`⌛`), Miscellaneous
/// Symbols and Dingbats (`☀ ✅ ❤`), Miscellaneous Symbols and Arrows (`⭐`), and U+1F000 to
/// U+1FAFF (the pictographs, emoticons, transport, flags' regional indicators, skin tones...).
const EMOJI_BLOCKS: [(u32, u32); 4] = [
    (0x2300, 0x23FF),
    (0x2600, 0x27BF),
    (0x2B00, 0x2BFF),
    (0x1_F000, 0x1_FAFF),
];

/// `text` as the search index reads it: unchanged unless it holds a character of a script
/// written without spaces between words or an emoji, each of which is then set apart by
/// spaces (an emoji as its stand-in), or a typed private-use character that could be taken for
/// a stand-in (then written after U+F8FF). ASCII text is never copied.
pub fn searchable(text: &str) -> Cow<'_, str> {
    if text.is_ascii() || !text.chars().any(|c| alone(c).is_some() || escaped(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        match alone(c) {
            Some(word) => {
                out.push(' ');
                out.push(word);
                out.push(' ');
            }
            None if escaped(c) => {
                out.push(ESCAPE);
                out.push(c);
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether a typed `c` is written after [`ESCAPE`]: a stand-in, or [`ESCAPE`] itself.
fn escaped(c: char) -> bool {
    (STAND_INS..STAND_INS + STAND_IN_COUNT).contains(&u32::from(c)) || c == ESCAPE
}

/// How many stand-ins [`EMOJI_BLOCKS`] take, from [`STAND_INS`] on.
const STAND_IN_COUNT: u32 = {
    let mut n = 0;
    let mut i = 0;
    while i < EMOJI_BLOCKS.len() {
        n += EMOJI_BLOCKS[i].1 - EMOJI_BLOCKS[i].0 + 1;
        i += 1;
    }
    n
};

/// Whether `c` belongs to a word in what [`searchable`] gives: a letter, a digit or a
/// private-use character (an emoji's stand-in), as the index's tokenizer sees it.
pub fn word_char(c: char) -> bool {
    c.is_alphanumeric() || PRIVATE_USE.contains(&c)
}

/// Whether `typed` (one search word) holds anything a search can find.
pub fn findable(typed: &str) -> bool {
    searchable(typed).chars().any(word_char)
}

/// The word `c` is on its own, if it is one: itself for a character of a script without spaces
/// between words, its stand-in for an emoji.
fn alone(c: char) -> Option<char> {
    let u = u32::from(c);
    if unspaced(u) {
        return Some(c);
    }
    let mut base = STAND_INS;
    for (first, last) in EMOJI_BLOCKS {
        if (first..=last).contains(&u) {
            return char::from_u32(base + (u - first));
        }
        base += last - first + 1;
    }
    None
}

/// Scripts written without spaces between words: Han (CJK ideographs and their extensions),
/// Hiragana, Katakana (with its half-width forms), Hangul syllables (Korean spaces its phrases,
/// but its particles stick to the words), Thai, Lao, Khmer and Myanmar.
fn unspaced(u: u32) -> bool {
    matches!(u,
        0x0E00..=0x0EFF       // Thai, Lao
        | 0x1000..=0x109F     // Myanmar
        | 0x1780..=0x17FF     // Khmer
        | 0x3040..=0x30FF     // Hiragana, Katakana
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xAC00..=0xD7A3     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFF66..=0xFF9F     // half-width Katakana
        | 0x2_0000..=0x3_134F // CJK extensions B to G
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_alone_and_not_copied() {
        for text in ["hello world", "Café über naïve", "don't panic", ""] {
            assert!(matches!(searchable(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn unspaced_scripts_become_a_word_a_character() {
        assert_eq!(searchable("日本語テキスト"), " 日  本  語  テ  キ  ス  ト ");
        assert_eq!(searchable("한국어를"), " 한  국  어  를 ");
        assert_eq!(searchable("see 東京 now"), "see  東  京  now");
    }

    #[test]
    fn emoji_become_stand_ins_set_apart() {
        let party = searchable("great🎉party");
        let words: Vec<&str> = party.split(' ').filter(|w| !w.is_empty()).collect();
        assert_eq!(words.len(), 3, "{party:?}");
        assert_eq!(words[0], "great");
        assert_eq!(words[2], "party");
        assert!(words[1].chars().all(word_char));
        // Each emoji its own stand-in, the same each time; distinct emoji distinct ones.
        assert_eq!(searchable("🎉"), searchable("🎉"));
        assert_ne!(searchable("🎉"), searchable("🎈"));
        assert_ne!(searchable("⭐"), searchable("☀"));
        // Every block's stand-ins stay in the private use area, and none is shared.
        let mut seen = std::collections::HashSet::new();
        for (first, last) in EMOJI_BLOCKS {
            for u in first..=last {
                if let Some(c) = char::from_u32(u) {
                    let s = alone(c).unwrap();
                    assert!(PRIVATE_USE.contains(&s), "{u:x}");
                    assert!(seen.insert(s), "{u:x} shares a stand-in");
                }
            }
        }
    }

    #[test]
    fn a_typed_private_use_character_is_never_an_emoji() {
        let party = searchable("🎉");
        let stand_in = party.trim();
        let typed = searchable(stand_in);
        assert_eq!(typed, format!("{ESCAPE}{stand_in}"));
        // As words (what the index and the memory search compare), never the emoji's.
        let words = |t: &str| -> Vec<String> {
            searchable(t)
                .split(|c: char| !word_char(c))
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(words(stand_in).len(), 1);
        assert_ne!(words(stand_in), words("🎉"));
        assert_eq!(words(&format!("my{stand_in}icon")).len(), 1);
        // The escape typed is escaped too, so what is read back is read one way: a typed escape
        // then a typed stand-in is not the typed stand-in alone.
        assert_eq!(searchable(&ESCAPE.to_string()), format!("{ESCAPE}{ESCAPE}"));
        assert_ne!(
            words(&format!("{ESCAPE}{stand_in}")),
            words(stand_in),
            "{ESCAPE:?}"
        );
        // Private-use characters past the stand-ins are left alone, and their text not copied.
        assert!(matches!(searchable("x\u{F000}y"), Cow::Borrowed(_)));
        assert!(!escaped('\u{EEC0}'));
        assert!(escaped('\u{EEBF}'));
    }

    #[test]
    fn what_can_be_found() {
        assert!(findable("hello"));
        assert!(findable("🎉"));
        assert!(findable("テキスト"));
        assert!(!findable("--"));
        assert!(!findable("\u{200B}"));
        // A variation selector or a joiner alone is nothing to find.
        assert!(!findable("\u{FE0F}\u{200D}"));
    }
}
