//! Cutting a byte stream into lines, for the dialects people type in. Lines end with LF or CRLF;
//! a line over [`MAX_LINE_BYTES`] is cut there and the rest up to the newline discarded; telnet
//! IAC sequences are skipped; bytes that are not UTF-8 become U+FFFD.

use crate::limits::MAX_LINE_BYTES;

/// One line read, and whether it was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) text: String,
    pub(crate) cut: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Telnet {
    #[default]
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: one option byte follows.
    Option,
    /// Inside IAC SB ... IAC SE.
    Sub,
    /// IAC inside a subnegotiation.
    SubIac,
}

const IAC: u8 = 0xFF;
const SB: u8 = 250;
const SE: u8 = 240;

/// Cuts bytes into lines. Holds at most [`MAX_LINE_BYTES`] and a CR that may end the line.
#[derive(Debug, Default)]
pub(crate) struct LineReader {
    buf: Vec<u8>,
    /// The current line was cut; drop bytes until the newline.
    discarding: bool,
    telnet: Telnet,
}

impl LineReader {
    /// Feeds bytes; calls `on_line` for every complete (or cut) line.
    pub(crate) fn feed(&mut self, data: &[u8], mut on_line: impl FnMut(Line)) {
        for &b in data {
            match self.telnet {
                Telnet::Data if b == IAC => {
                    self.telnet = Telnet::Iac;
                    continue;
                }
                Telnet::Data => {}
                Telnet::Iac => {
                    self.telnet = match b {
                        251..=254 => Telnet::Option,
                        SB => Telnet::Sub,
                        _ => Telnet::Data,
                    };
                    // IAC IAC is a literal 0xFF: not UTF-8 anyway, so it is dropped too.
                    continue;
                }
                Telnet::Option => {
                    self.telnet = Telnet::Data;
                    continue;
                }
                Telnet::Sub => {
                    if b == IAC {
                        self.telnet = Telnet::SubIac;
                    }
                    continue;
                }
                Telnet::SubIac => {
                    self.telnet = if b == SE { Telnet::Data } else { Telnet::Sub };
                    continue;
                }
            }
            if b == b'\n' {
                if !self.discarding {
                    on_line(self.take(false));
                }
                self.discarding = false;
                continue;
            }
            if self.discarding {
                continue;
            }
            // A CR right after a full line may be the start of its CRLF: held, as the line
            // end is not part of the line (a CRLF client's line of exactly the limit was cut).
            let cr_ending = b == b'\r' && self.buf.len() == MAX_LINE_BYTES;
            if self.buf.len() >= MAX_LINE_BYTES && !cr_ending {
                on_line(self.take(true));
                self.discarding = true;
                continue;
            }
            self.buf.push(b);
        }
    }

    fn take(&mut self, cut: bool) -> Line {
        let mut bytes = core::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Line {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            cut,
        }
    }

    /// Bytes held for an unfinished line.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// A line as bytes to send: the text and CRLF.
pub(crate) fn wire_line(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    v.extend_from_slice(s.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<Line> {
        let mut r = LineReader::default();
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c, |l| out.push(l));
        }
        out
    }

    fn plain(s: &str) -> Line {
        Line {
            text: s.into(),
            cut: false,
        }
    }

    #[test]
    fn lf_crlf_and_split_reads() {
        assert_eq!(
            read(&[b"a\r\nb\n", b"c", b"d\r", b"\n"]),
            vec![plain("a"), plain("b"), plain("cd")]
        );
        // Only a CR right before the newline is stripped.
        assert_eq!(read(&[b"x\ry\n"]), vec![plain("x\ry")]);
    }

    #[test]
    fn long_lines_are_cut_once() {
        let mut long = vec![b'a'; MAX_LINE_BYTES + 500];
        long.extend_from_slice(b"\nnext\n");
        let got = read(&[&long]);
        assert_eq!(got.len(), 2);
        assert!(got[0].cut);
        assert_eq!(got[0].text.len(), MAX_LINE_BYTES);
        assert_eq!(got[1], plain("next"));
    }

    #[test]
    fn a_line_of_the_limit_ending_in_crlf_is_not_cut() {
        // PROTOCOL.md: lines end with LF or CRLF, and a line over 2048 bytes is cut. A line of
        // exactly 2048 bytes was cut when it ended in CRLF (telnet, Windows) and not in LF.
        for end in [&b"\n"[..], b"\r\n"] {
            let mut line = vec![b'a'; MAX_LINE_BYTES];
            line.extend_from_slice(end);
            let got = read(&[&line]);
            assert_eq!(got.len(), 1);
            assert!(!got[0].cut, "{end:?}");
            assert_eq!(got[0].text.len(), MAX_LINE_BYTES);
        }
        // One byte more is cut, whichever the end, and the CR is never part of the text.
        for end in [&b"\n"[..], b"\r\n", b"\rz\n"] {
            let mut line = vec![b'a'; MAX_LINE_BYTES + 1];
            line.extend_from_slice(end);
            line.extend_from_slice(b"next\n");
            let got = read(&[&line]);
            assert_eq!(got.len(), 2, "{end:?}");
            assert!(got[0].cut);
            assert_eq!(got[0].text.len(), MAX_LINE_BYTES);
            assert_eq!(got[1], plain("next"));
        }
        // A full line, a CR, then more: cut there, the CR not in it.
        let mut line = vec![b'a'; MAX_LINE_BYTES];
        line.extend_from_slice(b"\rmore\nnext\n");
        let got = read(&[&line]);
        assert_eq!(got.len(), 2);
        assert!(got[0].cut);
        assert_eq!(got[0].text.len(), MAX_LINE_BYTES);
        assert_eq!(got[1], plain("next"));
    }

    #[test]
    fn telnet_and_bad_utf8_never_break() {
        let got = read(&[b"\xff\xfb\x01hi\xff\xfa\x18\x01\xff\xf0 \xc3\x28there\n"]);
        assert_eq!(got, vec![plain("hi \u{FFFD}(there")]);
        // Arbitrary bytes: no panic, bounded buffer.
        let mut r = LineReader::default();
        let junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        r.feed(&junk, |_| {});
        assert!(r.buffered() <= MAX_LINE_BYTES + 1);
    }
}
