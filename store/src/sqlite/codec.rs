//! A room event as an `events` row and back: the kind as a small number, the message id and
//! the one text an event carries in their own columns. Reading validates again (a nick, room or
//! text that is not valid is reported as damage, never passed on).

use natter_core::wire::{ErrorKind, EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};

/// `events.kind` values (also written in the migrations: keep them in step).
pub(crate) mod kind {
    pub(crate) const SAY: i64 = 0;
    pub(crate) const ACT: i64 = 1;
    pub(crate) const JOIN: i64 = 2;
    pub(crate) const PART: i64 = 3;
    pub(crate) const QUIT: i64 = 4;
    pub(crate) const NICK: i64 = 5;
    pub(crate) const TOPIC: i64 = 6;
    pub(crate) const KICK: i64 = 7;
    pub(crate) const MODE: i64 = 8;
    pub(crate) const MOVED: i64 = 9;
    pub(crate) const NOTICE: i64 = 10;
}

/// The columns an event kind is stored in: kind, message id, text. A kick's text is the
/// kicked nick, then a space and the reason if there is one (a nick has no spaces).
pub(crate) fn columns(k: &EventKind) -> (i64, Option<MsgId>, Option<std::borrow::Cow<'_, str>>) {
    use std::borrow::Cow;
    fn text(t: &Option<Text>) -> Option<Cow<'_, str>> {
        t.as_ref().map(|t| Cow::Borrowed(t.as_str()))
    }
    fn b(s: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(s))
    }
    match k {
        EventKind::Kick { target, reason } => (
            kind::KICK,
            None,
            Some(match reason {
                Some(r) => Cow::Owned(format!("{target} {r}")),
                None => Cow::Borrowed(target.as_str()),
            }),
        ),
        EventKind::Mode { change } => (kind::MODE, None, b(change.as_str())),
        EventKind::Say { id, text } => (kind::SAY, Some(*id), b(text.as_str())),
        EventKind::Act { id, text } => (kind::ACT, Some(*id), b(text.as_str())),
        EventKind::Notice { id, text } => (kind::NOTICE, Some(*id), b(text.as_str())),
        EventKind::Join => (kind::JOIN, None, None),
        EventKind::Part { reason } => (kind::PART, None, text(reason)),
        EventKind::Quit { reason } => (kind::QUIT, None, text(reason)),
        EventKind::Nick { new } => (kind::NICK, None, b(new.as_str())),
        EventKind::Topic { topic } => (kind::TOPIC, None, text(topic)),
        EventKind::Moved => (kind::MOVED, None, None),
    }
}

/// Appends `ev` to `out` as its frame in an `events` row (see `migrations/009_event_rows.sql`):
/// `[at, nick, kind, msg_id, text]`, JSON, `null` for what the event does not carry.
pub(crate) fn frame(
    out: &mut String,
    ev: &natter_core::wire::RoomEvent,
) -> Result<(), crate::WriteError> {
    // Numbers through `itoa`, not `write!`: the formatting machinery was ~5 % of the writer.
    let mut num = itoa::Buffer::new();
    let (kind, msg_id, text) = columns(&ev.kind);
    out.push('[');
    out.push_str(num.format(int("time", ev.at.0)?));
    out.push(',');
    json_str(out, ev.from.as_str());
    out.push(',');
    out.push_str(num.format(kind));
    out.push(',');
    match msg_id {
        Some(id) => out.push_str(num.format(int("message id", id.0)?)),
        None => out.push_str("null"),
    }
    out.push(',');
    match &text {
        Some(t) => json_str(out, t),
        None => out.push_str("null"),
    }
    out.push(']');
    Ok(())
}

/// Where each of the `n` frames of a row is in its `frames`: from its `ends` when the writer
/// wrote them (and they fit), else by a scan of `frames` ([`elements`]).
pub(crate) fn frame_places(
    frames: &str,
    ends: Option<&[u8]>,
    n: i64,
) -> Option<Vec<(usize, usize)>> {
    let n = usize::try_from(n).ok()?;
    if let Some(ends) = ends.filter(|e| e.len() == n * 4) {
        let mut at = Vec::with_capacity(n);
        let mut from = 1;
        for e in ends.chunks_exact(4) {
            let to = usize::try_from(u32::from_le_bytes(e.try_into().ok()?)).ok()?;
            let fits = from < to
                && frames.as_bytes().get(from) == Some(&b'[')
                && frames.as_bytes().get(to - 1) == Some(&b']')
                && frames.is_char_boundary(to);
            if !fits {
                return None;
            }
            at.push((from, to));
            from = to + 1;
        }
        return Some(at);
    }
    elements(frames).filter(|at| at.len() == n)
}

/// Where each element of the JSON array `frames` (a row's frames) is: its first and one past
/// its last byte. One pass over the bytes, minding strings and their escapes; `None` if
/// `frames` is not an array of arrays.
pub(crate) fn elements(frames: &str) -> Option<Vec<(usize, usize)>> {
    let mut at = Vec::new();
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut start = 0;
    for (i, &c) in frames.as_bytes().iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match (depth, c) {
            // Outside the elements: the array's brackets, commas, spaces.
            (0 | 1, b'[') => {
                depth += 1;
                start = i;
            }
            (1, b']') => return Some(at),
            (1, b',') | (0 | 1, b' ' | b'\n' | b'\t' | b'\r') => {}
            (0 | 1, _) => return None,
            // Inside an element.
            (_, b'"') => in_str = true,
            (_, b'[' | b'{') => depth += 1,
            (_, b']' | b'}') => {
                depth -= 1;
                if depth == 1 {
                    at.push((start, i + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// The event of a row's frame `f` (one element of its `frames`: `[at, nick, kind, msg_id,
/// text]`, as the writer or the migration wrote it), with the seq `seq`; `None` if `f` is not
/// such a frame.
pub(crate) fn parse_frame(f: &str, seq: i64) -> Option<Row> {
    let mut p = Parser {
        s: f.as_bytes(),
        i: 0,
    };
    p.byte(b'[')?;
    let at = p.int()?;
    p.byte(b',')?;
    let nick = p.string()?;
    p.byte(b',')?;
    let kind = p.int()?;
    p.byte(b',')?;
    let msg_id = if p.null() { None } else { Some(p.int()?) };
    p.byte(b',')?;
    let text = if p.null() { None } else { Some(p.string()?) };
    p.byte(b']')?;
    p.space();
    (p.i == p.s.len()).then_some(Row {
        seq,
        at,
        nick,
        kind,
        msg_id,
        text,
    })
}

/// Reads the JSON of a frame.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn byte(&mut self, b: u8) -> Option<()> {
        self.space();
        (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    fn null(&mut self) -> bool {
        self.space();
        let null = self.s.get(self.i..self.i + 4) == Some(b"null");
        if null {
            self.i += 4;
        }
        null
    }

    fn int(&mut self) -> Option<i64> {
        self.space();
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        std::str::from_utf8(self.s.get(start..self.i)?)
            .ok()?
            .parse()
            .ok()
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.byte(b'"')?;
        let mut out = Vec::new();
        loop {
            let rest = self.s.get(self.i..)?;
            let at = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
            out.extend_from_slice(rest.get(..at)?);
            self.i += at + 1;
            if rest.get(at) == Some(&b'"') {
                return String::from_utf8(out).ok();
            }
            let e = *self.s.get(self.i)?;
            self.i += 1;
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let u = self.hex4()?;
                    let code = if (0xd800..0xdc00).contains(&u) {
                        // A surrogate pair: the low half follows as another `\\u`.
                        (self.s.get(self.i..self.i + 2) == Some(b"\\u")).then_some(())?;
                        self.i += 2;
                        let low = self.hex4()?;
                        (0xdc00..0xe000)
                            .contains(&low)
                            .then(|| 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00))?
                    } else {
                        u
                    };
                    char::from_u32(code)?
                }
                _ => return None,
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Appends `s` to `out` as a JSON string.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // By bytes: the quote, the backslash and the control characters are ASCII, never part of a longer
    // character, so `at` is always on a character boundary.
    while let Some(at) = rest
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < b' ')
    {
        out.push_str(&rest[..at]);
        match rest.as_bytes()[at] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// A number as SQLite stores it (a signed 64-bit integer).
pub(crate) fn int(what: &'static str, value: u64) -> Result<i64, crate::WriteError> {
    i64::try_from(value).map_err(|_| crate::WriteError::OutOfRange { what, value })
}

/// An `events` row, as read.
pub(crate) struct Row {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) nick: String,
    pub(crate) kind: i64,
    pub(crate) msg_id: Option<i64>,
    pub(crate) text: Option<String>,
}

impl Row {
    /// The event this row holds, in `room`; the error says what is wrong with it.
    pub(crate) fn event(self, room: RoomName) -> Result<RoomEvent, String> {
        let at = format!("event {} of {room}", self.seq);
        let bad = |what: &str| format!("{at}: {what}");
        let seq = u64::try_from(self.seq).map_err(|_| bad("negative seq"))?;
        let time = u64::try_from(self.at).map_err(|_| bad("negative time"))?;
        let from = Nick::new(&self.nick).map_err(|e| bad(&e.to_string()))?;
        let text = |t: Option<String>| -> Result<Option<Text>, String> {
            t.map(|t| Text::new(&t).map_err(|e| bad(&e.to_string())))
                .transpose()
        };
        let id = || -> Result<MsgId, String> {
            let id = self.msg_id.ok_or_else(|| bad("no message id"))?;
            u64::try_from(id)
                .map(MsgId)
                .map_err(|_| bad("negative message id"))
        };
        let kind = match self.kind {
            kind::SAY | kind::ACT | kind::NOTICE => {
                let id = id()?;
                let text = text(self.text)?.ok_or_else(|| bad("no text"))?;
                match self.kind {
                    kind::SAY => EventKind::Say { id, text },
                    kind::ACT => EventKind::Act { id, text },
                    _ => EventKind::Notice { id, text },
                }
            }
            kind::JOIN => EventKind::Join,
            kind::PART => EventKind::Part {
                reason: text(self.text)?,
            },
            kind::QUIT => EventKind::Quit {
                reason: text(self.text)?,
            },
            kind::NICK => {
                let new = self.text.ok_or_else(|| bad("no new nick"))?;
                EventKind::Nick {
                    new: Nick::new(&new).map_err(|e| bad(&e.to_string()))?,
                }
            }
            kind::TOPIC => EventKind::Topic {
                topic: text(self.text)?,
            },
            kind::KICK => {
                let t = self.text.ok_or_else(|| bad("no kicked nick"))?;
                let (nick, reason) = match t.split_once(' ') {
                    Some((n, r)) => (n.to_owned(), Some(r.to_owned())),
                    None => (t, None),
                };
                EventKind::Kick {
                    target: Nick::new(&nick).map_err(|e| bad(&e.to_string()))?,
                    reason: text(reason)?,
                }
            }
            kind::MODE => EventKind::Mode {
                change: text(self.text)?.ok_or_else(|| bad("no mode change"))?,
            },
            kind::MOVED => EventKind::Moved,
            other => return Err(bad(&format!("unknown kind {other}"))),
        };
        Ok(RoomEvent {
            room,
            seq: Seq(seq),
            at: Millis(time),
            from,
            kind,
        })
    }
}

/// `sessions.refused`: a session's refused messages as bincode (the wire's encoding of an
/// [`ErrorKind`], whose numbering PROTOCOL.md fixes); `None` (NULL) when there are none.
pub(crate) fn refused_blob(
    refused: &[(MsgId, ErrorKind)],
) -> Result<Option<Vec<u8>>, crate::WriteError> {
    if refused.is_empty() {
        return Ok(None);
    }
    bincode::serde::encode_to_vec(refused, bincode::config::standard())
        .map(Some)
        .map_err(|e| crate::WriteError::Storage(format!("refused messages of a session: {e}")))
}

/// What [`refused_blob`] wrote; `None` if it is not that.
pub(crate) fn refused_of(blob: Option<&[u8]>) -> Option<Vec<(MsgId, ErrorKind)>> {
    let Some(blob) = blob else {
        return Some(Vec::new());
    };
    let (refused, read): (Vec<(MsgId, ErrorKind)>, usize) =
        bincode::serde::decode_from_slice(blob, bincode::config::standard()).ok()?;
    (read == blob.len()).then_some(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_whatever_their_strings_hold() {
        let mut frames = String::from("[");
        let texts = [r#"a "quoted" ] [ , text"#, r"\", r#"\"]"#, "日本 😀", "{[}"];
        for (i, t) in texts.iter().enumerate() {
            if i > 0 {
                frames.push(',');
            }
            frames.push_str(&format!("[{i},"));
            json_str(&mut frames, t);
            frames.push_str(",0,null,");
            json_str(&mut frames, t);
            frames.push(']');
        }
        frames.push(']');
        let at = elements(&frames).unwrap();
        assert_eq!(at.len(), texts.len());
        for (i, (t, &(from, to))) in texts.iter().zip(&at).enumerate() {
            let mut want = format!("[{i},");
            json_str(&mut want, t);
            want.push_str(",0,null,");
            json_str(&mut want, t);
            want.push(']');
            assert_eq!(&frames[from..to], want);
        }
        // Every frame reads back as the event written.
        for (i, (t, &(from, to))) in texts.iter().zip(&at).enumerate() {
            let row = parse_frame(&frames[from..to], 7).unwrap();
            assert_eq!(
                (row.seq, row.at, row.nick.as_str(), row.kind, row.msg_id),
                (7, i as i64, *t, 0, None)
            );
            assert_eq!(row.text.as_deref(), Some(*t));
        }
        // SQLite's escapes, as the migration's `json_array` may write them.
        let row = parse_frame(r#"[-5,"a\u00e9\ud83d\ude00\n\/\"",1,9,null]"#, 1).unwrap();
        assert_eq!(
            (row.at, row.nick.as_str(), row.msg_id, row.text),
            (-5, "aé😀\n/\"", Some(9), None)
        );
        for bad in [
            "[1,\"a\",0,null]",
            "[1,\"a,0,null,null]",
            "[1,\"a\",0,null,null]x",
            "[1,\"\\ud800\",0,null,null]",
            "[x,\"a\",0,null,null]",
        ] {
            assert!(parse_frame(bad, 1).is_none(), "{bad}");
        }
        // The writer's `ends` give the same places; ends that do not fit are refused.
        let ends: Vec<u8> = at
            .iter()
            .flat_map(|&(_, to)| (to as u32).to_le_bytes())
            .collect();
        assert_eq!(
            frame_places(&frames, Some(&ends), at.len() as i64),
            Some(at.clone())
        );
        assert_eq!(
            frame_places(&frames, None, at.len() as i64),
            Some(at.clone())
        );
        let mut off = ends.clone();
        off[0] += 1;
        assert_eq!(frame_places(&frames, Some(&off), at.len() as i64), None);
        assert_eq!(frame_places(&frames, None, at.len() as i64 + 1), None);
        // What SQLite writes (the migration) may have spaces; anything else is refused.
        assert_eq!(elements("[ [1] , [2,\"x\"] ]").unwrap().len(), 2);
        assert_eq!(elements("[]").unwrap().len(), 0);
        for bad in ["", "[", "[[1]", "[1,2]", "{}", "[\"x\"]", "x", "[[1]x]"] {
            assert!(elements(bad).is_none(), "{bad}: {:?}", elements(bad));
        }
    }
}
