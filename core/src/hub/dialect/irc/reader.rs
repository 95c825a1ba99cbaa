//! Cutting an IRC client's bytes into lines: a line ends at LF or CR (CR LF is one end); it may
//! be [`IRC_MAX_LINE`] bytes long with its CR LF, or [`IRC_MAX_TAGGED_LINE`] with message tags
//! in front (of which the part after the tags is held to the 512 too). A longer line is refused
//! whole (the rest up to its end is dropped unread), and a line that is not UTF-8 is refused
//! rather than guessed at (natter advertises `UTF8ONLY`).

use crate::limits::{IRC_MAX_LINE, IRC_MAX_TAGGED_LINE};

/// What one line of input was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Read {
    /// A line (without its end), UTF-8 and within the limits.
    Line(String),
    /// Over the limits: dropped.
    TooLong,
    /// Not UTF-8: dropped; the text is what could be read of it, for the command's name.
    NotUtf8(String),
}

/// Buffers at most one line: [`IRC_MAX_TAGGED_LINE`] bytes.
#[derive(Debug, Default)]
pub(super) struct Reader {
    buf: Vec<u8>,
    /// The current line was too long: bytes are dropped up to its end.
    discarding: bool,
}

/// Bytes a line may hold before its CR LF.
const MAX_BODY: usize = IRC_MAX_LINE - 2;
const MAX_TAGGED: usize = IRC_MAX_TAGGED_LINE - 2;

impl Reader {
    /// Feeds bytes; calls `on_read` for each line ended in them (empty lines are skipped).
    pub(super) fn feed(&mut self, mut data: &[u8], mut on_read: impl FnMut(Read)) {
        while !data.is_empty() {
            let end = memchr::memchr2(b'\n', b'\r', data);
            let piece = &data[..end.unwrap_or(data.len())];
            if !self.discarding {
                let first = self.buf.first().or(piece.first());
                let limit = if first == Some(&b'@') {
                    MAX_TAGGED
                } else {
                    MAX_BODY
                };
                if self.buf.len() + piece.len() > limit {
                    self.buf.clear();
                    self.discarding = true;
                    on_read(Read::TooLong);
                } else {
                    self.buf.extend_from_slice(piece);
                }
            }
            let Some(end) = end else {
                return;
            };
            // A line's end: the line is read (or the discarding of a long one stops).
            if self.discarding {
                self.discarding = false;
            } else if !self.buf.is_empty() {
                on_read(self.take());
            }
            data = &data[end + 1..];
        }
    }

    fn take(&mut self) -> Read {
        let bytes = core::mem::take(&mut self.buf);
        // With tags, the message after them is held to the same 512 bytes.
        if bytes.first() == Some(&b'@') {
            let body = bytes
                .iter()
                .position(|&b| b == b' ')
                .map_or(0, |at| bytes.len() - at - 1);
            if body > MAX_BODY {
                return Read::TooLong;
            }
        }
        match String::from_utf8(bytes) {
            Ok(s) => Read::Line(s),
            Err(e) => Read::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// Bytes held for an unfinished line.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<Read> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c, |l| out.push(l));
        }
        out
    }

    fn line(s: &str) -> Read {
        Read::Line(s.into())
    }

    #[test]
    fn crlf_lf_and_cr_end_lines_in_any_cut() {
        assert_eq!(
            read(&[b"NICK a\r\nUSER", b" u 0 * :r\n", b"PING x\r", b"\n\r\n"]),
            [line("NICK a"), line("USER u 0 * :r"), line("PING x")]
        );
    }

    #[test]
    fn the_512_byte_limit_with_and_without_tags() {
        let at_limit = "x".repeat(MAX_BODY);
        let over = "x".repeat(MAX_BODY + 1);
        let got = read(&[format!("{at_limit}\r\n{over}\r\nNEXT\r\n").as_bytes()]);
        assert_eq!(got, [line(&at_limit), Read::TooLong, line("NEXT")]);
        // Tags may take up to 8191 bytes in all, but the message after them still 512.
        let tags = format!("@label={}", "t".repeat(4000));
        let ok = format!("{tags} {at_limit}");
        let long_body = format!("{tags} {over}");
        let got = read(&[format!("{ok}\r\n{long_body}\r\nNEXT\n").as_bytes()]);
        assert_eq!(got, [line(&ok), Read::TooLong, line("NEXT")]);
        let huge = format!("@{}\r\nNEXT\r\n", "t".repeat(IRC_MAX_TAGGED_LINE));
        assert_eq!(read(&[huge.as_bytes()]), [Read::TooLong, line("NEXT")]);
    }

    #[test]
    fn junk_is_bounded_and_non_utf8_is_refused() {
        let mut r = Reader::default();
        let junk: Vec<u8> = (0..50_000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect();
        let mut n = 0;
        r.feed(&junk, |_| n += 1);
        assert!(r.buffered() <= MAX_TAGGED);
        assert!(n > 0, "an endless line is refused as it goes");
        let got = read(&[b"PRIVMSG #a :caf\xe9\r\n"]);
        assert!(matches!(&got[..], [Read::NotUtf8(s)] if s.starts_with("PRIVMSG #a")));
    }
}
