//! IRC lines as the Modern IRC client protocol document and IRCv3 message-tags describe them:
//! `[@tags] [:source] COMMAND [params...] [:trailing]`. Parsing is lenient about spaces and
//! never fails on junk (a line with no command is nothing); writing escapes tag values and puts
//! a `:` in front of a last parameter that needs one.

use crate::limits::IRC_MAX_ECHOED;
use std::borrow::Cow;

/// Parameters a message may have (RFC 2812: 15; the 15th takes the rest of the line).
pub(super) const MAX_PARAMS: usize = 15;

/// One line from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message<'a> {
    /// The raw tags, without the `@` (empty if none).
    tags: &'a str,
    /// The command as sent (`privmsg` and `PRIVMSG` are one command: see [`Message::verb`]).
    pub(super) command: &'a str,
    /// The parameters, the trailing one last.
    pub(super) params: Vec<&'a str>,
}

impl<'a> Message<'a> {
    /// Parses a line (without its CR LF). `None`: it holds no command.
    pub(super) fn parse(line: &'a str) -> Option<Message<'a>> {
        let mut rest = line.trim_start_matches(' ');
        let mut tags = "";
        if let Some(t) = rest.strip_prefix('@') {
            let (t, r) = t.split_once(' ').unwrap_or((t, ""));
            tags = t;
            rest = r.trim_start_matches(' ');
        }
        if rest.starts_with(':') {
            // A client's source is ignored (the server knows who it is).
            rest = rest.split_once(' ').map_or("", |(_, r)| r);
            rest = rest.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing);
                break;
            }
            if params.len() == MAX_PARAMS - 1 {
                params.push(rest);
                break;
            }
            let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(p);
            rest = r;
        }
        Some(Message {
            tags,
            command,
            params,
        })
    }

    /// The command in upper case.
    pub(super) fn verb(&self) -> String {
        self.command.to_ascii_uppercase()
    }

    /// The value of tag `key` (unescaped; empty for a tag without a value), if present.
    pub(super) fn tag(&self, key: &str) -> Option<Cow<'a, str>> {
        self.tags.split(';').find_map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            (k == key).then(|| unescape(v))
        })
    }

    /// The length of the tags as sent, without the `@` and the space after them.
    pub(super) fn tags_len(&self) -> usize {
        self.tags.len()
    }

    /// The client-only tags (`+key[=value]`, IRCv3 message-tags) as sent, values still escaped,
    /// joined by `;`: what a `TAGMSG` carries to others. A tag whose key is not `+`, an
    /// optional vendor (`example.com/`) and letters, digits and `-` is left out, and so is one
    /// whose value, unescaped as the receiving clients read it, holds anything
    /// [`sanitize`](crate::types::sanitize) would change (a control character, an escaped CR or
    /// LF, a bidi override...): clients show some values (`+draft/react`), and no natter text
    /// reaches anyone with those.
    pub(super) fn client_tags(&self) -> String {
        let mut out = String::new();
        for t in self.tags.split(';') {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            let Some(name) = k.strip_prefix('+') else {
                continue;
            };
            let (vendor, key) = name.rsplit_once('/').unwrap_or(("", name));
            let key_ok = !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && vendor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !key_ok {
                continue;
            }
            let meant = unescape(v);
            if crate::types::sanitize(&meant) != meant {
                continue;
            }
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(t);
        }
        out
    }

    /// Parameter `i`, if given and not empty.
    pub(super) fn param(&self, i: usize) -> Option<&'a str> {
        self.params.get(i).copied().filter(|p| !p.is_empty())
    }
}

/// A tag value as it was meant (IRCv3 message-tags escaping).
fn unescape(v: &str) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            // A lone backslash at the end is dropped.
            None => {}
        }
    }
    Cow::Owned(out)
}

/// Appends a tag value escaped (IRCv3 message-tags).
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Message tags for a line the server writes: `key=value` pairs in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tags(String);

impl Tags {
    /// No tags.
    pub(super) fn none() -> Tags {
        Tags::default()
    }

    /// Adds `key=value` (the value escaped).
    pub(super) fn with(mut self, key: &str, value: &str) -> Tags {
        if !self.0.is_empty() {
            self.0.push(';');
        }
        self.0.push_str(key);
        if !value.is_empty() {
            self.0.push('=');
            escape_into(&mut self.0, value);
        }
        self
    }

    /// Tags as sent by a client (`key=value;...`, escaped already), in front of these.
    pub(super) fn with_raw(mut self, raw: &str) -> Tags {
        if raw.is_empty() {
            return self;
        }
        if !self.0.is_empty() {
            self.0.insert(0, ';');
        }
        self.0.insert_str(0, raw);
        self
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Writes one line: tags, source (none if empty), command and parameters, then CR LF. The last parameter is
/// written as a trailing one (`:` in front) when it must be: empty, holding a space, or starting
/// with `:`, or when `trailing` is set (text people read always is).
pub(super) fn write_line(
    out: &mut String,
    tags: &Tags,
    source: &str,
    command: &str,
    params: &[&str],
    trailing: bool,
) {
    if !tags.is_empty() {
        out.push('@');
        out.push_str(&tags.0);
        out.push(' ');
    }
    if !source.is_empty() {
        out.push(':');
        out.push_str(source);
        out.push(' ');
    }
    out.push_str(command);
    if let Some((last, middle)) = params.split_last() {
        for p in middle {
            out.push(' ');
            out.push_str(&middle_param(p));
        }
        let last = without_controls(last, true);
        out.push(' ');
        if trailing || last.is_empty() || last.contains(' ') || last.starts_with(':') {
            out.push(':');
        }
        out.push_str(&last);
    }
    out.push_str("\r\n");
}

/// A middle parameter as written: without control characters, and up to its first space (a
/// client's last parameter, after `:`, may hold spaces, and echoed whole it would be read as
/// several: `LINKS :a b`'s `365`); `*` when that leaves nothing, or a `:` in front (which
/// would make it the last).
pub(super) fn middle_param(p: &str) -> Cow<'_, str> {
    let first_word = |p: &str| p.split(' ').next().unwrap_or_default().len();
    let p = match without_controls(p, false) {
        Cow::Borrowed(p) => Cow::Borrowed(&p[..first_word(p)]),
        Cow::Owned(mut p) => {
            p.truncate(first_word(&p));
            Cow::Owned(p)
        }
    };
    if p.is_empty() || p.starts_with(':') {
        Cow::Borrowed("*")
    } else {
        p
    }
}

/// A parameter without control characters. Numerics echo what a client typed (a channel or
/// nick that was refused), which may hold NUL, CR or LF (which would cut the line or make it
/// one no client may receive), terminal controls, or bidi overrides, line separators and
/// invisible characters (which would garble how the client shows the rest of the line); all
/// are left out ([`crate::types::shown_unsafely`]); everything else natter writes is cleaned
/// [`crate::types::Text`] already. `\x01` stays in the last parameter, where CTCP (`ACTION`)
/// needs it. Never longer than `p`, so the line lengths counted before stay true.
pub(super) fn without_controls(p: &str, last: bool) -> Cow<'_, str> {
    let drop = |c: char| crate::types::shown_unsafely(c) && !(last && c == '\x01');
    if p.contains(drop) {
        Cow::Owned(p.chars().filter(|&c| !drop(c)).collect())
    } else {
        Cow::Borrowed(p)
    }
}

/// A name a client gave as a numeric echoes it: at most [`IRC_MAX_ECHOED`] bytes, cut at a
/// character boundary, so that the numeric fits its line however long the name was.
pub(super) fn echoed(p: &str) -> &str {
    cut(p, IRC_MAX_ECHOED)
}

/// `p` cut to at most `max` bytes at a character boundary, with nothing added.
pub(super) fn cut(p: &str, max: usize) -> &str {
    if p.len() <= max {
        return p;
    }
    let mut end = max;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    &p[..end]
}

/// `text` cut to at most `max` bytes, with an ellipsis if it was cut.
pub(super) fn fit(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The length in bytes of what [`write_line`] writes after the tags (the part the 512-byte
/// limit counts), for a line whose last parameter is `last_len` bytes and trailing.
pub(super) fn body_len(source: &str, command: &str, middle: &[&str], last_len: usize) -> usize {
    // ':' source ' ' command (' ' param)* ' :' last CR LF
    1 + source.len()
        + 1
        + command.len()
        + middle.iter().map(|p| 1 + p.len()).sum::<usize>()
        + 2
        + last_len
        + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_source_command_and_params() {
        let m =
            Message::parse("@label=a\\sb;+typing=active :me!u@h PRIVMSG #x :hello  there").unwrap();
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#x", "hello  there"]);
        assert_eq!(m.tag("label").as_deref(), Some("a b"));
        assert_eq!(m.tag("+typing").as_deref(), Some("active"));
        assert_eq!(m.tag("msgid"), None);
        let m = Message::parse("join   #a,#b  key").unwrap();
        assert_eq!(
            (m.verb().as_str(), &m.params[..]),
            ("JOIN", &["#a,#b", "key"][..])
        );
        let m = Message::parse("PRIVMSG #x :").unwrap();
        assert_eq!(m.params, ["#x", ""]);
        assert_eq!(m.param(1), None, "an empty trailing parameter is no text");
        assert_eq!(Message::parse(""), None);
        assert_eq!(Message::parse("   "), None);
        assert_eq!(Message::parse("@a=b"), None);
        assert_eq!(Message::parse(":src"), None);
        let many = format!("CMD {}", "p ".repeat(20));
        let m = Message::parse(&many).unwrap();
        assert_eq!(m.params.len(), MAX_PARAMS);
        assert!(
            m.params[MAX_PARAMS - 1].starts_with("p p"),
            "the 15th takes the rest"
        );
    }

    #[test]
    fn client_tags_whose_values_a_terminal_would_act_on_are_left_out() {
        let tags = |line: &str| Message::parse(line).unwrap().client_tags();
        assert_eq!(
            tags("@+draft/react=\u{1F44D};+x=a\\sb;label=l TAGMSG #r"),
            "+draft/react=\u{1F44D};+x=a\\sb"
        );
        // Escaped CR and LF (read as raw ones), ESC, a bidi override, a zero-width space.
        for bad in ["a\\nb", "a\\r", "\u{1b}[31m", "\u{202e}evil", "x\u{200b}y"] {
            let line = format!("@+ok=1;+bad={bad} TAGMSG #r");
            assert_eq!(tags(&line), "+ok=1", "{bad:?}");
        }
    }

    #[test]
    fn tag_values_round_trip_through_escaping() {
        let v = "semi;colon space\\back\r\n";
        let t = Tags::none().with("label", v).with("flag", "");
        let mut line = String::new();
        write_line(&mut line, &t, "srv", "PONG", &["srv", "x"], false);
        let m = Message::parse(line.trim_end()).unwrap();
        assert_eq!(m.tag("label").as_deref(), Some(v));
        assert_eq!(m.tag("flag").as_deref(), Some(""));
        assert_eq!(unescape("end\\"), "end");
        assert_eq!(unescape("\\q"), "q");
    }

    #[test]
    fn the_last_parameter_gets_a_colon_when_it_needs_one() {
        let w = |params: &[&str], trailing| {
            let mut s = String::new();
            write_line(&mut s, &Tags::none(), "s", "X", params, trailing);
            s
        };
        assert_eq!(w(&["a", "b"], false), ":s X a b\r\n");
        assert_eq!(w(&["a", "b c"], false), ":s X a :b c\r\n");
        assert_eq!(w(&["a", ":b"], false), ":s X a ::b\r\n");
        assert_eq!(w(&["a", ""], false), ":s X a :\r\n");
        assert_eq!(w(&["a", "b"], true), ":s X a :b\r\n");
        assert_eq!(w(&[], false), ":s X\r\n");
        let line = w(&["#room", "text"], true);
        assert_eq!(body_len("s", "X", &["#room"], 4), line.len());
    }

    #[test]
    fn echoed_parameters_lose_their_control_characters() {
        let w = |params: &[&str]| {
            let mut s = String::new();
            write_line(&mut s, &Tags::none(), "s", "403", params, false);
            s
        };
        assert_eq!(
            w(&["ann", "#a\x03\0\r\x1b[2J", "No such channel"]),
            ":s 403 ann #a[2J :No such channel\r\n"
        );
        assert_eq!(w(&["ann", "\0\u{85}", "x\ny\0"]), ":s 403 ann * xy\r\n");
        assert_eq!(
            w(&["ann", "#a\u{202e}\u{200b}\u{2028}b", "x\u{2066}y"]),
            ":s 403 ann #ab xy\r\n",
            "nor bidi overrides, invisible characters or line separators"
        );
        assert_eq!(
            w(&["\0:a", "b"]),
            ":s 403 * b\r\n",
            "a middle parameter stays one"
        );
        assert_eq!(
            w(&["#a", "\x01ACTION waves\x1b\x01"]),
            ":s 403 #a :\x01ACTION waves\x01\r\n",
            "CTCP's marks stay in the last parameter"
        );
    }
}
