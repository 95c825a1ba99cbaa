//! Turning what a person typed into an FTS5 match expression in which every word is taken
//! literally: each word becomes a quoted phrase (with `"` doubled) limited to the `text` column,
//! so FTS5 sees no operator, column filter, prefix star or parenthesis, whatever the person
//! typed. A room filter is one more phrase, on the `room` column (which holds room ids).

use natter_core::limits::SEARCH_MAX_WORDS;

/// The match expression for `typed`: its first [`SEARCH_MAX_WORDS`] words that hold a letter or
/// digit, each a quoted phrase in the `text` column, all required (FTS5 joins phrases with an
/// implicit AND), and if `room` is given, that room id in the `room` column. `None` when no
/// word holds anything the index stores (then nothing can match).
///
/// A word is split again by the index's tokenizer inside its quotes, so `don't` is the phrase
/// `don t` and `foo-bar` the phrase `foo bar`: they match those words next to each other, as
/// the person meant.
pub(crate) fn match_expression(typed: &str, room: Option<i64>) -> Option<String> {
    let clean = natter_core::types::sanitize(typed);
    let mut out = String::new();
    let words = clean
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(SEARCH_MAX_WORDS);
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("text : \"");
        out.push_str(&word.replace('"', "\"\""));
        out.push('"');
    }
    if out.is_empty() {
        return None;
    }
    if let Some(id) = room {
        out.push_str(&format!(" room : \"{id}\""));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted_in_the_text_column() {
        assert_eq!(
            match_expression("hello world", None).unwrap(),
            r#"text : "hello" text : "world""#
        );
        assert_eq!(
            match_expression(r#"say "hi" NEAR(a b) x:y -z *"#, None).unwrap(),
            r#"text : "say" text : """hi""" text : "NEAR(a" text : "b)" text : "x:y" text : "-z""#
        );
        assert_eq!(
            match_expression("  AND  OR ", Some(12)).unwrap(),
            r#"text : "AND" text : "OR" room : "12""#
        );
    }

    #[test]
    fn nothing_searchable_is_none() {
        assert_eq!(match_expression("", None), None);
        assert_eq!(match_expression("  * - \" : ( ) 😀", Some(1)), None);
    }

    #[test]
    fn words_are_capped() {
        let many = "w ".repeat(SEARCH_MAX_WORDS + 10);
        let expr = match_expression(&many, None).unwrap();
        assert_eq!(expr.matches("\"w\"").count(), SEARCH_MAX_WORDS);
    }
}
