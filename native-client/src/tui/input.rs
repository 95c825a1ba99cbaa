//! The input line: text with a cursor, editing keys and a bounded history. Pasted text arrives
//! whole (bracketed paste) and is inserted at the cursor with its line breaks kept (drawn as
//! `↵`): nothing is sent until Enter, which sends each line as its own message, in order, as
//! irssi and WeeChat send a pasted text, blank lines left out; a line after the first is said
//! even if it starts with `/` ([`lines_to_send`]). A paste of more than
//! [`PASTE_ASK_LINES`] lines asks first (the first Enter says how many messages it would be,
//! the second sends them, as irssi asks before a paste of more than five lines), and one of
//! more than [`PASTE_MAX_LINES`] is not sent at all (the line stays, to cut), nor is one with a
//! password command on any of its lines ([`Check::Password`]).

use natter_core::limits::MAX_TEXT_BYTES;
use std::collections::VecDeque;
use unicode_segmentation::UnicodeSegmentation;

use super::draw::{drawn_cols, glyphs};

/// Lines kept for Up/Down.
pub const HISTORY_LEN: usize = 200;

/// Bytes the line holds: several times a message's limit ([`MAX_TEXT_BYTES`]), so a paste a
/// little too long is kept whole: the refusal says its real length and Up brings all of it back
/// to shorten (cut at the limit, its tail was lost without a word). Bounded all the same.
pub const INPUT_MAX_BYTES: usize = 8 * MAX_TEXT_BYTES;

/// Lines a paste sends on one Enter; more, and the first Enter asks ([`InputLine::check`]).
pub const PASTE_ASK_LINES: usize = 5;

/// Lines one Enter sends at most: more is not a chat line but a file (and would run into the
/// server's flood control, the lines waiting long after they were sent).
pub const PASTE_MAX_LINES: usize = 40;

/// What Enter on a line of several lines (a paste) does first ([`InputLine::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Send it.
    Send,
    /// This many messages: say so, and send them on the next Enter if the line is unchanged.
    Ask(usize),
    /// This many lines is more than [`PASTE_MAX_LINES`]: not sent.
    TooMany(usize),
    /// Several lines, one of them a command with a password (`/login`, `/register`,
    /// `/password`): not sent. A later line is said, not run ([`lines_to_send`]), so its
    /// password would be said in the open conversation, and the lines after a typed `/login`
    /// may be the password itself.
    Password,
}

/// The messages a submitted line sends: each of its lines that is not blank (one for a line
/// typed, several for a paste).
pub fn messages(line: &str) -> impl Iterator<Item = &str> {
    line.split('\n').filter(|l| !l.trim().is_empty())
}

/// The lines to type into the session for a submitted line: its [`messages`], the first as it
/// is (a command typed before the paste, `/me ` or `/msg bob `, stays one; a paste's own first
/// line had its `/` doubled by [`InputLine::paste`]), every later one
/// said as text, a `/` at its start doubled (the session's way to say such a line): a pasted
/// log or shell snippet with a `/quit` or `/usr/bin` line must not run it. After a first line
/// that sends elsewhere (`/msg bob`, `/msg #room`, `/notice`; or that is only `/msg bob`,
/// the paste starting on the next line), the later lines go there too, not to the open
/// conversation: what was meant for one person must not land in a room.
pub fn lines_to_send(line: &str) -> Vec<String> {
    use natter_core::command::{self, Command, Input};
    let mut lines = messages(line).peekable();
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let sends_to = |line: &str| match command::parse(line) {
        Ok(Some(Input::Command(Command::Msg { to, .. }))) => Some(format!("/msg {to} ")),
        Ok(Some(Input::Command(Command::SayIn { room, .. }))) => Some(format!("/msg {room} ")),
        Ok(Some(Input::Command(Command::Notice { room, .. }))) => Some(format!("/notice {room} ")),
        Ok(Some(Input::Command(Command::NoticeTo { to, .. }))) => Some(format!("/notice {to} ")),
        _ => None,
    };
    // `/msg bob` with nothing after it on its line (a paste that starts with a line break):
    // nothing to send itself, but where the lines after it go.
    let bare = lines
        .peek()
        .and(bare_target(first))
        .and_then(|probe| sends_to(&probe));
    let prefix = bare.clone().or_else(|| sends_to(first));
    let later = lines.map(|l| match &prefix {
        Some(p) => format!("{p}{l}"),
        None if l.starts_with('/') => format!("/{l}"),
        None => l.to_owned(),
    });
    let first = bare.is_none().then(|| first.to_owned());
    first.into_iter().chain(later).collect()
}

/// For a line that is `/msg` or `/notice` and a target, nothing more: the same with a word
/// after it, to ask [`natter_core::command::parse`] where it would send.
fn bare_target(line: &str) -> Option<String> {
    let mut words = line.trim().strip_prefix('/')?.split_whitespace();
    let (verb, to) = (words.next()?, words.next()?);
    let said = ["msg", "dm", "notice"]
        .iter()
        .any(|v| verb.eq_ignore_ascii_case(v));
    (said && words.next().is_none()).then(|| format!("/{verb} {to} x"))
}

/// Whether `c` ends a word (for moving by word, deleting one and completing one).
fn is_gap(c: char) -> bool {
    c == ' ' || c == '\n'
}

/// An editable line with history.
#[derive(Debug, Default)]
pub struct InputLine {
    text: Vec<char>,
    /// Cursor position, in chars (0..=len).
    cursor: usize,
    history: VecDeque<String>,
    /// Position while browsing history (an index into `history`), and the line being typed.
    browsing: Option<(usize, Vec<char>)>,
    /// The last Tab's completion, which the next Tab replaces with the next match as long as
    /// the line is as that Tab left it.
    cycle: Option<Cycle>,
    /// A line was sent: the empty line's hint (where to start) is no longer shown.
    sent: bool,
    /// The text the last Enter asked about (a long paste): the next Enter on it sends it.
    asked: Option<Vec<char>>,
}

/// Where a run of Tabs is: irssi's and WeeChat's cycling through every nick that matches.
#[derive(Debug)]
struct Cycle {
    /// What was typed before the first Tab (the prefix every match starts with).
    word: String,
    /// Where the completed word starts, in chars.
    start: usize,
    /// Which match is shown.
    index: usize,
    /// The line and cursor as the last Tab left them (every other key ends the cycle too).
    text: Vec<char>,
    cursor: usize,
}

impl InputLine {
    /// An empty line.
    pub fn new() -> InputLine {
        InputLine::default()
    }

    /// The text.
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// Empty, and nothing sent yet: the time to say how to start.
    pub fn wants_hint(&self) -> bool {
        !self.sent && self.text.is_empty()
    }

    /// The cursor, in chars from the start.
    #[cfg(test)]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn bytes(&self) -> usize {
        self.text.iter().map(|c| c.len_utf8()).sum()
    }

    /// Inserts one character at the cursor (refused past [`INPUT_MAX_BYTES`]).
    pub fn insert(&mut self, c: char) {
        self.cycle = None;
        let c = if c == '\t' { ' ' } else { c };
        if c.is_control() || self.bytes() + c.len_utf8() > INPUT_MAX_BYTES {
            return;
        }
        self.text.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Inserts pasted text: its line breaks are kept (`\r\n` and `\r` as `\n`; each line is
    /// sent as a message of its own), breaks at its end dropped, a tab as a space, other
    /// control characters dropped; what does not fit is cut. A paste of several lines put at
    /// the start of the input line whose first line starts with `/` has that `/` doubled (the
    /// session's way to say such a line, shown as it will be sent): its first line is pasted
    /// text like the others ([`lines_to_send`]), not a command typed before the paste.
    pub fn paste(&mut self, s: &str) {
        self.cycle = None;
        let s = s.trim_end_matches(['\r', '\n']);
        let mut room = INPUT_MAX_BYTES.saturating_sub(self.bytes());
        let mut add = Vec::new();
        let mut prev = None;
        for raw in s.chars() {
            let c = match raw {
                '\n' if prev == Some('\r') => None,
                '\r' | '\n' => Some('\n'),
                '\t' => Some(' '),
                c if c.is_control() => None,
                c => Some(c),
            };
            prev = Some(raw);
            let Some(c) = c else { continue };
            if c.len_utf8() > room {
                break;
            }
            room -= c.len_utf8();
            add.push(c);
        }
        // Where the paste's first line that is not blank starts, when nothing but line breaks
        // is before it (blank lines are not sent: that line is the first message).
        let first_line = add
            .split(|c| *c == '\n')
            .scan(0, |at, line| {
                let start = *at;
                *at += line.len() + 1;
                Some((start, line))
            })
            .find(|(_, line)| line.iter().any(|c| !c.is_whitespace()));
        let typed_before = self.text[..self.cursor].iter().any(|c| *c != '\n');
        if let Some((at, line)) = first_line.filter(|_| !typed_before && add.contains(&'\n'))
            && line.first() == Some(&'/')
        {
            if room == 0 {
                // No room for the doubled `/`: the last character goes instead.
                add.pop();
            }
            add.insert(at, '/');
        }
        let n = add.len();
        self.text.splice(self.cursor..self.cursor, add);
        self.cursor += n;
    }

    /// Deletes the character before the cursor (a whole grapheme cluster: an emoji sequence
    /// goes at once, as it was drawn).
    pub fn backspace(&mut self) {
        self.cycle = None;
        let from = self.before(self.cursor);
        self.text.drain(from..self.cursor);
        self.cursor = from;
    }

    /// Deletes the character under the cursor (a whole grapheme cluster).
    pub fn delete(&mut self) {
        self.cycle = None;
        let to = self.after(self.cursor);
        self.text.drain(self.cursor..to);
    }

    /// Where the grapheme clusters of the text start, in chars, and its end.
    fn boundaries(&self) -> Vec<usize> {
        let s: String = self.text.iter().collect();
        let mut at = 0;
        let mut out = vec![0];
        for g in s.graphemes(true) {
            at += g.chars().count();
            out.push(at);
        }
        out
    }

    /// The grapheme boundary before char index `i` (0 at the start).
    fn before(&self, i: usize) -> usize {
        self.boundaries()
            .into_iter()
            .rev()
            .find(|b| *b < i)
            .unwrap_or(0)
    }

    /// The grapheme boundary after char index `i` (the end at the end).
    fn after(&self, i: usize) -> usize {
        self.boundaries()
            .into_iter()
            .find(|b| *b > i)
            .unwrap_or(self.text.len())
    }

    /// Deletes the word before the cursor (Ctrl+W).
    pub fn delete_word(&mut self) {
        self.cycle = None;
        let mut start = self.cursor;
        while start > 0 && is_gap(self.text[start - 1]) {
            start -= 1;
        }
        while start > 0 && !is_gap(self.text[start - 1]) {
            start -= 1;
        }
        self.text.drain(start..self.cursor);
        self.cursor = start;
    }

    /// Tab: completes the word before the cursor with the first of `matches` for it (given
    /// the word and whether it starts the line: a nick, a command or a room), followed by `: `
    /// after a nick at the start of the line and a space elsewhere; Tab again (nothing else
    /// typed meanwhile) puts the next match in its place, round and round. False if nothing was
    /// found.
    pub fn complete(&mut self, matches: impl FnOnce(&str, bool) -> Vec<String>) -> bool {
        let cycling = self
            .cycle
            .take()
            .filter(|c| c.text == self.text && c.cursor == self.cursor);
        let (word, start, index, end) = match cycling {
            Some(c) => (c.word, c.start, c.index + 1, self.cursor),
            None => {
                let mut start = self.cursor;
                while start > 0 && !is_gap(self.text[start - 1]) {
                    start -= 1;
                }
                if start == self.cursor {
                    return false;
                }
                let word: String = self.text[start..self.cursor].iter().collect();
                (word, start, 0, self.cursor)
            }
        };
        let found = matches(&word, start == 0 || self.text[start - 1] == '\n');
        if found.is_empty() {
            return false;
        }
        let index = index % found.len();
        let nick = !found[index].starts_with(['/', '#']);
        let line_start = start == 0 || self.text[start - 1] == '\n';
        let suffix = if line_start && nick { ": " } else { " " };
        let with: Vec<char> = found[index].chars().chain(suffix.chars()).collect();
        let replaced: usize = self.text[start..end].iter().map(|c| c.len_utf8()).sum();
        let grows = with.iter().map(|c| c.len_utf8()).sum::<usize>();
        if self.bytes() - replaced + grows > INPUT_MAX_BYTES {
            return false;
        }
        self.text.splice(start..end, with.iter().copied());
        self.cursor = start + with.len();
        self.cycle = Some(Cycle {
            word,
            start,
            index,
            text: self.text.clone(),
            cursor: self.cursor,
        });
        true
    }

    /// Clears the line (Ctrl+U).
    pub fn clear(&mut self) {
        self.cycle = None;
        self.text.clear();
        self.cursor = 0;
    }

    /// Cursor one character left (over a whole grapheme cluster).
    pub fn left(&mut self) {
        self.cycle = None;
        self.cursor = self.before(self.cursor);
    }

    /// Cursor one character right (over a whole grapheme cluster).
    pub fn right(&mut self) {
        self.cycle = None;
        self.cursor = self.after(self.cursor);
    }

    /// Cursor to the start of the word before it (Ctrl+Left, Alt+b): over spaces, then over
    /// what is not a space.
    pub fn word_left(&mut self) {
        self.cycle = None;
        let mut at = self.cursor;
        while at > 0 && is_gap(self.text[at - 1]) {
            at -= 1;
        }
        while at > 0 && !is_gap(self.text[at - 1]) {
            at -= 1;
        }
        self.cursor = at;
    }

    /// Cursor to the end of the word after it (Ctrl+Right, Alt+f).
    pub fn word_right(&mut self) {
        self.cycle = None;
        let n = self.text.len();
        let mut at = self.cursor;
        while at < n && is_gap(self.text[at]) {
            at += 1;
        }
        while at < n && !is_gap(self.text[at]) {
            at += 1;
        }
        self.cursor = at;
    }

    /// Cursor to the start.
    pub fn home(&mut self) {
        self.cycle = None;
        self.cursor = 0;
    }

    /// Cursor to the end.
    pub fn end(&mut self) {
        self.cycle = None;
        self.cursor = self.text.len();
    }

    /// Enter, before [`InputLine::submit`]: whether the line may be sent. A paste of more than
    /// [`PASTE_ASK_LINES`] messages ([`messages`]) is asked about once (the next Enter on the
    /// same text sends it); one of more than [`PASTE_MAX_LINES`] is not sent.
    pub fn check(&mut self) -> Check {
        let line = self.text();
        let n = messages(&line).count();
        if n > 1 && messages(&line).any(natter_core::command::carries_password) {
            return Check::Password;
        }
        if n > PASTE_MAX_LINES {
            return Check::TooMany(n);
        }
        if n <= PASTE_ASK_LINES || self.asked.as_ref() == Some(&self.text) {
            return Check::Send;
        }
        self.asked = Some(self.text.clone());
        Check::Ask(n)
    }

    /// Enter: the line to send (if not blank; a paste's lines are kept in it, see
    /// [`messages`]), remembered in the history unless it carries a password (Up would show it
    /// to whoever looks next); the line is cleared.
    pub fn submit(&mut self) -> Option<String> {
        self.cycle = None;
        self.asked = None;
        let line = self.text();
        self.clear();
        self.browsing = None;
        if line.trim().is_empty() {
            return None;
        }
        self.sent = true;
        let secret = line.split('\n').any(natter_core::command::carries_password);
        if !secret && self.history.back() != Some(&line) {
            if self.history.len() == HISTORY_LEN {
                self.history.pop_front();
            }
            self.history.push_back(line.clone());
        }
        Some(line)
    }

    /// Up: the previous line from the history.
    pub fn history_prev(&mut self) {
        self.cycle = None;
        let at = match &self.browsing {
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len(), self.text.clone()));
                self.history.len() - 1
            }
        };
        self.show_history(at);
    }

    /// Down: the next line from the history, or back to what was being typed.
    pub fn history_next(&mut self) {
        self.cycle = None;
        let Some((i, draft)) = &self.browsing else {
            return;
        };
        if i + 1 >= self.history.len() {
            self.text = draft.clone();
            self.browsing = None;
            self.cursor = self.text.len();
        } else {
            let at = i + 1;
            self.show_history(at);
        }
    }

    fn show_history(&mut self, at: usize) {
        let Some(line) = self.history.get(at) else {
            return;
        };
        self.text = line.chars().collect();
        self.cursor = self.text.len();
        if let Some((i, _)) = self.browsing.as_mut() {
            *i = at;
        }
    }

    /// What to show in `width` columns: the visible slice of the text and the cursor's column
    /// in it. Scrolls horizontally so the cursor stays in view. Steps by grapheme cluster, each
    /// shown and measured as the message pane draws it ([`glyphs`]: an emoji sequence as the
    /// emoji it is made of, as wide on every terminal).
    pub fn visible(&self, width: usize) -> (String, usize) {
        if width == 0 {
            return (String::new(), 0);
        }
        // A paste's line breaks drawn as `↵` (one char for one: the cursor's index holds).
        let s: String = self
            .text
            .iter()
            .map(|c| if *c == '\n' { '↵' } else { *c })
            .collect();
        let cursor = s
            .char_indices()
            .nth(self.cursor)
            .map_or(s.len(), |(b, _)| b);
        let clusters: Vec<(usize, &str)> = s.grapheme_indices(true).collect();
        // Start far enough right that the cursor (plus one cell for it) fits: walked back from
        // the cursor while the glyphs before it fit. (Until the forty-first session each start
        // from the line's beginning was measured to the cursor, quadratic in the line's
        // length: typing at the end of a long pasted line lagged a second a key.)
        let mut start = clusters.partition_point(|(at, _)| *at < cursor);
        let mut fit = 0;
        while let Some(prev) = start.checked_sub(1)
            && let Some((_, g)) = clusters.get(prev)
            && fit + drawn_cols(g) < width
        {
            fit += drawn_cols(g);
            start = prev;
        }
        let from = clusters
            .get(start)
            .map_or(s.len(), |(at, _)| *at)
            .min(cursor);
        let cols = drawn_cols(&s[from..cursor]);
        let mut shown = String::new();
        let mut used = 0;
        for (_, g) in clusters.iter().skip(start) {
            let cw = drawn_cols(g);
            if used + cw > width {
                break;
            }
            shown.extend(glyphs(g));
            used += cw;
        }
        (shown, cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cursor steps over an emoji sequence (a family, a flag) as over one character, and
    /// counts the columns it is drawn in (a family as the three emoji it is made of, as the
    /// message pane draws it: [`glyphs`]), so the caret sits where it shows; Backspace and
    /// Delete take the whole sequence.
    #[test]
    fn the_cursor_steps_over_emoji_sequences_as_they_are_drawn() {
        let family = "👨\u{200d}👩\u{200d}👧";
        let drawn = "👨👩👧";
        let mut i = InputLine::new();
        i.paste(&format!("a{family}b🇫🇷"));
        assert_eq!(i.visible(20), (format!("a{drawn}b🇫🇷"), 10));
        i.left();
        assert_eq!(i.visible(20).1, 8);
        i.left();
        assert_eq!(i.visible(20).1, 7);
        i.left();
        assert_eq!(i.visible(20).1, 1);
        i.delete();
        assert_eq!(i.visible(20), ("ab🇫🇷".to_owned(), 1));
        i.end();
        i.backspace();
        assert_eq!(i.visible(20), ("ab".to_owned(), 2));
        // Scrolled: the caret stays in view, sequences whole.
        let mut i = InputLine::new();
        i.paste(&family.repeat(10));
        let (shown, col) = i.visible(13);
        assert_eq!((shown.as_str(), col), (drawn.repeat(2).as_str(), 12));
        // A skin tone: the emoji alone, two columns.
        let mut i = InputLine::new();
        i.paste("👍🏽x");
        assert_eq!(i.visible(20), ("👍x".to_owned(), 3));
    }

    #[test]
    fn tab_completes_the_word_before_the_cursor() {
        let one = |name: &str| vec![name.to_owned()];
        let mut i = InputLine::new();
        i.paste("bo");
        assert!(i.complete(|w, _| if w == "bo" { one("Bob") } else { vec![] }));
        assert_eq!(i.text(), "Bob: ");
        i.paste("ask ca");
        assert!(i.complete(|_, _| one("carol")));
        assert_eq!(i.text(), "Bob: ask carol ");
        assert_eq!(i.cursor(), i.text().chars().count());
        i.insert('x');
        i.backspace();
        assert!(
            !i.complete(|_, _| one("x")),
            "nothing typed before the cursor (an edit ended the Tabs)"
        );
        i.paste("zz");
        assert!(!i.complete(|_, _| vec![]));
        assert_eq!(i.text(), "Bob: ask carol zz");
    }

    /// irssi and WeeChat users press Tab again for the next nick that matches: before, the
    /// second Tab saw nothing typed before the cursor and did nothing, so only the first match
    /// could ever be completed.
    #[test]
    fn repeated_tabs_cycle_through_every_match_and_an_edit_ends_the_cycle() {
        let nicks = ["bob", "Bobby", "bonnie"];
        let matches = |w: &str, _| -> Vec<String> {
            nicks
                .iter()
                .filter(|n| n.to_lowercase().starts_with(&w.to_lowercase()))
                .map(|n| n.to_string())
                .collect()
        };
        let mut i = InputLine::new();
        i.paste("bo");
        let mut seen = Vec::new();
        for _ in 0..4 {
            assert!(i.complete(matches));
            seen.push(i.text());
            assert_eq!(i.cursor(), i.text().chars().count());
        }
        assert_eq!(seen, ["bob: ", "Bobby: ", "bonnie: ", "bob: "]);
        // Mid-line, with a space after the nick; the cycle keeps the rest of the line.
        let mut i = InputLine::new();
        i.paste("hi bo and more");
        for _ in 0.." and more".chars().count() {
            i.left();
        }
        assert!(i.complete(matches));
        assert!(i.complete(matches));
        assert_eq!(i.text(), "hi Bobby  and more");
        // Typing after a completion starts afresh from the new word.
        let mut i = InputLine::new();
        i.paste("bo");
        assert!(i.complete(matches));
        i.paste("thanks bon");
        assert!(i.complete(matches));
        assert_eq!(i.text(), "bob: thanks bonnie ");
        assert!(i.complete(matches), "the only match, again");
        assert_eq!(i.text(), "bob: thanks bonnie ");
    }

    /// A completed command or room is followed by a space, never by the `: ` that addresses
    /// a nick at the start of the line; whether the word starts the line is passed on.
    #[test]
    fn a_completed_command_or_room_takes_a_space() {
        let mut i = InputLine::new();
        i.paste("/jo");
        assert!(i.complete(|w, start| {
            assert!(start);
            if w == "/jo" {
                vec!["/join".into()]
            } else {
                vec![]
            }
        }));
        assert_eq!(i.text(), "/join ");
        i.paste("#ru");
        assert!(i.complete(|w, start| {
            assert!(!start);
            if w == "#ru" {
                vec!["#rust".into()]
            } else {
                vec![]
            }
        }));
        assert_eq!(i.text(), "/join #rust ");
        let mut i = InputLine::new();
        i.paste("#r");
        assert!(i.complete(|_, _| vec!["#rust".into()]));
        assert_eq!(i.text(), "#rust ");
    }

    /// Ctrl+Left/Right (and Alt+b/f, Alt+Left/Right) moved one character, like Left/Right:
    /// there was no way to move by word, which every line editor has.
    #[test]
    fn the_cursor_moves_by_word() {
        let mut i = InputLine::new();
        i.paste("one  two 日本 three");
        let n = i.text().chars().count();
        i.word_left();
        assert_eq!(i.cursor(), n - "three".len());
        i.word_left();
        assert_eq!(i.cursor(), "one  two ".len());
        i.word_left();
        i.word_left();
        assert_eq!(i.cursor(), 0);
        i.word_left();
        assert_eq!(i.cursor(), 0, "stays at the start");
        i.word_right();
        assert_eq!(i.cursor(), 3, "to the end of `one`");
        i.word_right();
        assert_eq!(i.cursor(), "one  two".len());
        i.word_right();
        assert_eq!(i.cursor(), "one  two 日本".chars().count());
        i.word_right();
        i.word_right();
        assert_eq!(i.cursor(), n, "stays at the end");
    }

    fn typed(s: &str) -> InputLine {
        let mut i = InputLine::new();
        for c in s.chars() {
            i.insert(c);
        }
        i
    }

    #[test]
    fn cursor_editing() {
        let mut i = typed("helo");
        i.left();
        i.insert('l');
        assert_eq!(i.text(), "hello");
        i.home();
        i.delete();
        i.insert('j');
        assert_eq!(i.text(), "jello");
        i.end();
        i.backspace();
        assert_eq!((i.text().as_str(), i.cursor()), ("jell", 4));
        i.right();
        assert_eq!(i.cursor(), 4);
        i.home();
        i.left();
        i.backspace();
        assert_eq!((i.text().as_str(), i.cursor()), ("jell", 0));
        let mut w = typed("one two  ");
        w.delete_word();
        assert_eq!(w.text(), "one ");
    }

    #[test]
    fn history_goes_back_and_returns_to_the_draft() {
        let mut i = InputLine::new();
        for l in ["first", "second"] {
            for c in l.chars() {
                i.insert(c);
            }
            assert_eq!(i.submit().as_deref(), Some(l));
        }
        assert_eq!(i.submit(), None);
        i.insert('d');
        i.history_prev();
        assert_eq!(i.text(), "second");
        i.history_prev();
        assert_eq!(i.text(), "first");
        i.history_prev();
        assert_eq!(i.text(), "first");
        i.history_next();
        assert_eq!(i.text(), "second");
        i.history_next();
        assert_eq!(i.text(), "d");
        assert_eq!(i.cursor(), 1);
    }

    #[test]
    fn a_line_with_a_password_is_sent_but_not_kept_in_the_history() {
        let mut i = InputLine::new();
        for l in [
            "hello",
            "/login alice hunter2hunter2",
            "/password hunter2 newer-one",
        ] {
            i.paste(l);
            assert_eq!(i.submit().as_deref(), Some(l));
        }
        i.history_prev();
        assert_eq!(i.text(), "hello");
        i.history_prev();
        assert_eq!(i.text(), "hello");
    }

    #[test]
    fn history_is_bounded() {
        let mut i = InputLine::new();
        for n in 0..HISTORY_LEN + 5 {
            i.paste(&n.to_string());
            i.submit();
        }
        assert_eq!(i.history.len(), HISTORY_LEN);
        assert_eq!(i.history.front().map(String::as_str), Some("5"));
    }

    /// A paste of several lines was joined with spaces into one message; irssi and WeeChat
    /// send each line as its own. The breaks are kept (drawn as `↵`) and each line that is not
    /// blank is a message.
    #[test]
    fn a_multi_line_paste_keeps_its_lines_each_a_message() {
        let mut i = typed("> ");
        i.paste("line one\r\nline two\n\n\tthree\rfour\n");
        assert_eq!(i.text(), "> line one\nline two\n\n three\nfour");
        assert_eq!(i.visible(40).0, "> line one↵line two↵↵ three↵four");
        assert_eq!(i.check(), Check::Send);
        let line = i.submit().expect("sent");
        assert_eq!(
            messages(&line).collect::<Vec<_>>(),
            ["> line one", "line two", " three", "four"]
        );
        // Up brings the whole paste back.
        i.history_prev();
        assert_eq!(i.text(), line);
        // Words end at a line break too: moving, deleting, completing.
        let mut w = InputLine::new();
        w.paste("ab\ncd");
        w.word_left();
        assert_eq!(w.cursor(), 3);
        w.end();
        assert!(w.complete(|word, start| {
            assert!(start, "a line of its own");
            assert_eq!(word, "cd");
            vec!["cdr".into()]
        }));
        assert_eq!(w.text(), "ab\ncdr: ");
        w.delete_word();
        assert_eq!(w.text(), "ab\n");
        // A paste with a password on one of its lines is not kept for Up.
        let mut p = InputLine::new();
        p.paste("hello\n/login alice hunter2hunter2");
        assert!(p.submit().is_some());
        p.history_prev();
        assert_eq!(p.text(), "");
    }

    /// A pasted line starting with `/` (a shell path, a log with `/quit` in it) was run as a
    /// command, as irssi runs it; it is said as text, but for the first line, which may hold
    /// the command typed before the paste.
    #[test]
    fn a_pasted_line_after_the_first_is_said_even_if_it_starts_with_a_slash() {
        assert_eq!(
            lines_to_send("/me pastes:\n/quit now\n\nplain\n//already"),
            ["/me pastes:", "//quit now", "plain", "///already"]
        );
        assert_eq!(lines_to_send("/join #x"), ["/join #x"], "typed: a command");
        // `/msg bob ` typed, then a paste: every line to bob, none to the open room.
        assert_eq!(
            lines_to_send("/msg bob one\ntwo\n/three"),
            ["/msg bob one", "/msg bob two", "/msg bob /three"]
        );
        assert_eq!(
            lines_to_send("/msg #ops a\nb"),
            ["/msg #ops a", "/msg #ops b"]
        );
        assert_eq!(
            lines_to_send("/notice #ops a\nb"),
            ["/notice #ops a", "/notice #ops b"]
        );
        assert_eq!(
            lines_to_send("/notice bob a\nb"),
            ["/notice bob a", "/notice bob b"]
        );
        for l in lines_to_send("a\n/quit\n/usr/bin/env") {
            assert!(
                matches!(
                    natter_core::command::parse(&l),
                    Ok(Some(natter_core::command::Input::Say(_)))
                ),
                "{l}"
            );
        }
    }

    /// `/msg bob ` typed, then a paste that starts with a line break (a selection begun at the
    /// end of the line above): the first message was `/msg bob ` alone, a usage error, and
    /// every pasted line went to the open conversation instead of to bob.
    #[test]
    fn a_paste_after_a_bare_msg_goes_where_the_msg_said() {
        let mut i = typed("/msg bob ");
        i.paste("\nhello\n/three");
        assert_eq!(
            lines_to_send(&i.text()),
            ["/msg bob hello", "/msg bob /three"]
        );
        assert_eq!(
            lines_to_send("/notice #ops\n  \na\nb"),
            ["/notice #ops a", "/notice #ops b"]
        );
        assert_eq!(
            lines_to_send("/msg bob "),
            ["/msg bob "],
            "typed alone: the session's usage words"
        );
        // `/query bob` opens bob's conversation itself: the lines follow it there.
        assert_eq!(lines_to_send("/query bob\nhi"), ["/query bob", "hi"]);
    }

    /// A pasted line after the first is said, not run: a pasted `/login alice PASSWORD` was
    /// said in the open room (or to bob after `/msg bob`), and a paste into a typed `/login
    /// alice ` of two lines ran the first and said the second. A paste of several lines with a
    /// password command on any of them is not sent; one line is the command as typed.
    #[test]
    fn a_paste_of_several_lines_with_a_password_command_is_not_sent() {
        for (typed_first, pasted) in [
            ("", "my notes:\n/login alice hunter2hunter2"),
            ("/msg bob ", "here:\n  /password old new"),
            ("/login alice ", "alice\nhunter2hunter2"),
        ] {
            let mut i = typed(typed_first);
            i.paste(pasted);
            let text = i.text();
            assert_eq!(i.check(), Check::Password, "{text:?}");
            assert_eq!(i.check(), Check::Password, "{text:?}: asked again");
            assert_eq!(i.text(), text, "kept, to edit");
        }
        let mut i = typed("/login alice ");
        i.paste("hunter2hunter2\n");
        assert_eq!(i.check(), Check::Send, "one line: the command typed");
    }

    /// A paste of several lines whose first line starts with `/`, pasted at the start of the
    /// input line, ran that line as a command (a pasted log's `/quit` quit), though every later
    /// line of it is said: the paste's own first line is said too (its `/` doubled where it
    /// shows); a command typed before the paste still applies, and a one-line paste is as if
    /// typed.
    #[test]
    fn a_pasted_first_line_is_said_too() {
        let mut i = InputLine::new();
        i.paste("/quit now\nmore");
        assert_eq!(lines_to_send(&i.text()), ["//quit now", "more"]);
        // After blank lines, which are not sent: still the paste's first line.
        let mut i = InputLine::new();
        i.paste("\n  \n/quit now\nmore");
        assert_eq!(lines_to_send(&i.text()), ["//quit now", "more"]);
        let mut i = typed("/me ");
        i.paste("waves\nmore");
        assert_eq!(lines_to_send(&i.text()), ["/me waves", "more"]);
        let mut i = InputLine::new();
        i.paste("/join #x");
        assert_eq!(lines_to_send(&i.text()), ["/join #x"]);
    }

    /// More than [`PASTE_ASK_LINES`] messages: the first Enter asks, the second sends (an edit
    /// in between asks again); more than [`PASTE_MAX_LINES`] is never sent.
    #[test]
    fn a_long_paste_is_asked_about_and_a_huge_one_is_not_sent() {
        let lines = |n: usize| {
            (1..=n)
                .map(|k| format!("l{k}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut i = InputLine::new();
        i.paste(&lines(PASTE_ASK_LINES));
        assert_eq!(i.check(), Check::Send);
        i.clear();
        i.paste(&lines(PASTE_ASK_LINES + 1));
        assert_eq!(i.check(), Check::Ask(PASTE_ASK_LINES + 1));
        i.insert('x');
        assert_eq!(
            i.check(),
            Check::Ask(PASTE_ASK_LINES + 1),
            "changed: asked again"
        );
        assert_eq!(i.check(), Check::Send);
        assert_eq!(
            i.submit().map(|l| messages(&l).count()),
            Some(PASTE_ASK_LINES + 1)
        );
        i.paste(&lines(PASTE_ASK_LINES + 1));
        assert_eq!(
            i.check(),
            Check::Ask(PASTE_ASK_LINES + 1),
            "a new paste asks"
        );
        i.clear();
        i.paste(&lines(PASTE_MAX_LINES + 1));
        assert_eq!(i.check(), Check::TooMany(PASTE_MAX_LINES + 1));
        assert_eq!(i.check(), Check::TooMany(PASTE_MAX_LINES + 1));
        assert_eq!(i.text(), lines(PASTE_MAX_LINES + 1), "kept, to cut");
        // Blank lines are not messages.
        i.clear();
        i.paste(&format!("{}\n\n\n  \n", lines(PASTE_ASK_LINES)));
        assert_eq!(i.check(), Check::Send);
    }

    #[test]
    fn a_paste_is_bounded() {
        // A paste too long to send is kept whole (the refusal says how long it is, Up brings
        // it back to shorten); one past what the line holds is cut there.
        let mut long = typed("x");
        long.home();
        long.paste(&"y".repeat(MAX_TEXT_BYTES + 1_000));
        assert_eq!(long.cursor(), MAX_TEXT_BYTES + 1_000);
        assert_eq!(long.submit().map(|l| l.len()), Some(MAX_TEXT_BYTES + 1_001));
        let mut big = InputLine::new();
        big.paste(&"x".repeat(INPUT_MAX_BYTES + 10));
        assert_eq!(big.text().len(), INPUT_MAX_BYTES);
        big.paste("\u{1b}");
        assert_eq!(big.text().len(), INPUT_MAX_BYTES);
    }

    /// A long line (a paste of up to [`INPUT_MAX_BYTES`]) is drawn in time proportional to
    /// its length: each draw measured the line from every start up to the cursor, so a key
    /// typed at the end of a pasted 16 KB line took a second or more to show.
    #[test]
    fn a_long_line_is_drawn_without_lag() {
        let mut i = InputLine::new();
        i.paste(&"word ".repeat(INPUT_MAX_BYTES / 5));
        assert_eq!(i.text().len(), INPUT_MAX_BYTES);
        let started = std::time::Instant::now();
        for _ in 0..20 {
            let (shown, col) = i.visible(80);
            assert_eq!((shown.len(), col), (79, 79));
        }
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
        // The view is the same as ever: the cursor's glyphs before it, then what fits.
        i.home();
        assert_eq!(i.visible(12), ("word word wo".to_owned(), 0));
        for _ in 0..7 {
            i.right();
        }
        assert_eq!(i.visible(6), ("rd wor".to_owned(), 5));
    }

    #[test]
    fn the_view_follows_the_cursor() {
        let i = typed("abcdefghij");
        assert_eq!(i.visible(5), ("ghij".into(), 4));
        let mut j = typed("abcdefghij");
        j.home();
        assert_eq!(j.visible(5), ("abcde".into(), 0));
        assert_eq!(typed("ab").visible(5), ("ab".into(), 2));
        assert_eq!(typed("日本語").visible(4), ("語".into(), 2));
    }
}
