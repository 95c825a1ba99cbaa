//! How IRC's names and text map onto natter's: nicks are natter nicks (ASCII, case-insensitive,
//! so `CASEMAPPING=ascii`); channels are natter rooms (`#` and lower-case `a-z 0-9 - _ .`, so
//! `#Rust` is `#rust`); everyone is `nick!nick@natter`. Text loses IRC's formatting codes, a
//! CTCP ACTION is natter's action, and a natter text longer than an IRC line is split.

use crate::limits::{IRC_MAX_REALNAME, IRC_MAX_USERNAME, IRC_TOPICLEN, MAX_NICK_LEN, MAX_ROOM_LEN};
use crate::moderation::Mask;
use crate::types::{Nick, RoomName, Text};
use std::borrow::Cow;

/// The host part of everyone's `nick!user@host`.
pub(crate) const HOST: &str = "natter";

/// The network's name (`NETWORK=`).
pub(super) const NETWORK: &str = "natter";

/// `nick!nick@natter`.
pub(super) fn source(nick: &Nick) -> String {
    format!("{nick}!{nick}@{HOST}")
}

/// A ban or mute mask as IRC clients are shown it (`367`, `728`, the `MODE +b` line), in a
/// form the mask reader (`read::irc_mask`) reads back as the same mask, so that a client's
/// `/unban` of what it was shown, or its own ban list's entry, lifts it: a nick is `bob!*@*`,
/// an address `*!*@203.0.113.7`, a network `*!*@203.0.113.0/24`. An account stays
/// `account:alice` (InspIRCd 4's named extban): no `nick!user@host` names an account.
pub(crate) fn mask(mask: &Mask) -> String {
    match mask {
        Mask::Account(_) => mask.to_string(),
        Mask::Nick(n) => format!("{n}!*@*"),
        Mask::Net { addr, prefix } if u32::from(*prefix) == addr_bits(addr) => {
            format!("*!*@{addr}")
        }
        Mask::Net { .. } => format!("*!*@{mask}"),
    }
}

fn addr_bits(addr: &core::net::IpAddr) -> u32 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// A room's mode change (`EventKind::Mode`) with its ban or mute mask, if any, as IRC clients
/// are shown masks ([`mask`]): `+b nick:bob` is `+b bob!*@*`.
pub(super) fn mode_change(change: &str) -> Cow<'_, str> {
    match change.split_once(' ') {
        Some((letter @ ("+b" | "-b" | "+q" | "-q"), m)) => match Mask::parse(m) {
            Ok(m) => Cow::Owned(format!("{letter} {}", mask(&m))),
            Err(_) => Cow::Borrowed(change),
        },
        _ => Cow::Borrowed(change),
    }
}

/// An IRC nick as a natter nick, or the words of a `432 ERR_ERRONEUSNICKNAME`.
pub(super) fn nick(s: &str) -> Result<Nick, String> {
    Nick::new(s).map_err(|_| {
        if s.len() > MAX_NICK_LEN {
            format!("Erroneous nickname: natter nicks are at most {MAX_NICK_LEN} characters")
        } else {
            "Erroneous nickname: natter nicks are a letter or _[]{}^| then letters, digits \
             and -_[]{}^|"
                .into()
        }
    })
}

/// `USER`'s user name as kept: ASCII letters, digits and `-_.`, cut to
/// [`IRC_MAX_USERNAME`] characters (IRC servers cut a long one); anything else gets the words
/// of a `468 ERR_INVALIDUSERNAME`, and the client may send `USER` again.
pub(super) fn username(s: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if s.is_empty() || !s.chars().all(ok) {
        return Err(
            "Your username is not valid: natter takes ASCII letters, digits and - _ . \
                    in a user name"
                .into(),
        );
    }
    Ok(s.chars().take(IRC_MAX_USERNAME).collect())
}

/// `USER`'s real name as kept: without IRC formatting, other control characters as U+FFFD (as
/// in all natter text), cut to [`IRC_MAX_REALNAME`] bytes at a character boundary; `None` if
/// nothing is left.
pub(super) fn realname(s: &str) -> Option<String> {
    let text = Text::new(&plain(s)).ok()?;
    let s = text.as_str();
    let mut end = s.len().min(IRC_MAX_REALNAME);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].trim_end().to_owned()).filter(|r| !r.is_empty())
}

/// A topic as an IRC client sets it: without formatting, cut to [`IRC_TOPICLEN`] bytes (what
/// `TOPICLEN` says) at a character boundary. Empty when nothing is left (`TOPIC #a :` clears).
pub(super) fn topic(s: &str) -> Cow<'_, str> {
    let plain = plain(s);
    if plain.len() <= IRC_TOPICLEN {
        return plain;
    }
    let mut end = IRC_TOPICLEN;
    while !plain.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(plain[..end].trim_end().to_owned())
}

/// Why a channel name is no natter room: the numeric and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadChannel {
    /// `403 ERR_NOSUCHCHANNEL` for what is no channel at all (natter has only `#`
    /// channels), `479 ERR_BADCHANNAME` for a `#` name natter cannot hold.
    pub(super) numeric: &'static str,
    /// Words.
    pub(super) words: String,
}

/// An IRC channel name as a natter room.
pub(super) fn channel(s: &str) -> Result<RoomName, BadChannel> {
    if !s.starts_with('#') {
        return Err(BadChannel {
            numeric: super::numeric::ERR_NOSUCHCHANNEL,
            words: "No such channel (natter channels start with #)".into(),
        });
    }
    RoomName::new(s).map_err(|_| BadChannel {
        numeric: super::numeric::ERR_BADCHANNAME,
        words: if s.len() > MAX_ROOM_LEN {
            format!("Illegal channel name: natter channels are at most {MAX_ROOM_LEN} bytes")
        } else {
            "Illegal channel name: natter channels are # then letters, digits, - _ or .".into()
        },
    })
}

/// What a client's PRIVMSG or NOTICE text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Said {
    /// Chat text.
    Plain(Text),
    /// `\x01ACTION text\x01`: an action.
    Action(Text),
    /// Another CTCP request or reply (`VERSION`, `PING`, ...): natter does not carry them.
    Ctcp(String),
    /// Nothing left to say.
    Empty,
}

/// Reads a client's text: formatting codes (bold, colours, ...) are dropped, since natter text
/// has no control characters; CTCP is recognised.
pub(super) fn said(s: &str) -> Said {
    if let Some(ctcp) = s.strip_prefix('\x01') {
        let ctcp = ctcp.strip_suffix('\x01').unwrap_or(ctcp);
        let (verb, rest) = ctcp.split_once(' ').unwrap_or((ctcp, ""));
        if !verb.eq_ignore_ascii_case("ACTION") {
            return Said::Ctcp(verb.to_ascii_uppercase().chars().take(32).collect());
        }
        return match Text::new(&plain(rest)) {
            Ok(t) => Said::Action(t),
            Err(_) => Said::Empty,
        };
    }
    match Text::new(&plain(s)) {
        Ok(t) => Said::Plain(t),
        Err(_) => Said::Empty,
    }
}

/// `s` without IRC formatting: bold, italics, underline, strike, monospace, reverse, reset,
/// and colours with their numbers (`\x03` `fg[,bg]`, `\x04` `rrggbb[,rrggbb]`).
pub(super) fn plain(s: &str) -> Cow<'_, str> {
    // Every formatting code is a C0 control character: most text has none.
    if !s.bytes().any(|b| b < 0x20) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x02' | '\x0f' | '\x11' | '\x16' | '\x1d' | '\x1e' | '\x1f' => {}
            '\x03' | '\x04' => {
                let (is_digit, n): (fn(&char) -> bool, usize) = if c == '\x03' {
                    (|c| c.is_ascii_digit(), 2)
                } else {
                    (|c| c.is_ascii_hexdigit(), 6)
                };
                let skip = |chars: &mut core::iter::Peekable<core::str::Chars<'_>>| {
                    let mut took = 0;
                    while took < n && chars.peek().is_some_and(is_digit) {
                        chars.next();
                        took += 1;
                    }
                    took
                };
                if skip(&mut chars) > 0 && chars.peek() == Some(&',') {
                    let mut ahead = chars.clone();
                    ahead.next();
                    if ahead.peek().is_some_and(is_digit) {
                        chars.next();
                        skip(&mut chars);
                    }
                }
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Cuts `text` into pieces of at most `max` bytes (at least one character each), at
/// character boundaries, each ending after a space where one is in its second half.
pub(super) fn split(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while end > 0 && !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // A budget smaller than one character: the character goes alone.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        } else if let Some(space) = rest[..end].rfind(' ')
            && space + 1 > end / 2
        {
            end = space + 1;
        }
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_and_channels_natter_can_and_cannot_hold() {
        assert_eq!(nick("Alice[1]").unwrap().as_str(), "Alice[1]");
        assert!(
            nick("a".repeat(17).as_str())
                .unwrap_err()
                .contains("at most 16")
        );
        assert!(nick("back\\slash").unwrap_err().contains("Erroneous"));
        assert!(nick("9lives").is_err());
        assert_eq!(channel("#Rust").unwrap().as_str(), "#rust");
        let bad = channel("#c++").unwrap_err();
        assert_eq!(bad.numeric, "479");
        assert!(bad.words.contains("letters, digits"));
        assert_eq!(channel("&local").unwrap_err().numeric, "403");
        assert_eq!(channel("rust").unwrap_err().numeric, "403");
        let long = format!("#{}", "x".repeat(32));
        assert!(channel(&long).unwrap_err().words.contains("at most 32"));
        assert_eq!(source(&nick("bob").unwrap()), "bob!bob@natter");
    }

    #[test]
    fn formatting_is_dropped_and_ctcp_recognised() {
        assert_eq!(
            plain("\x02bold\x02 \x0304,12red\x03 \x031,x \x0399x \x04ff00AAhex\x0f"),
            "bold red ,x x hex"
        );
        assert_eq!(plain("\x033,5,7"), ",7");
        let t = |s: &str| Text::new(s).unwrap();
        assert_eq!(said("hi \x1dthere"), Said::Plain(t("hi there")));
        assert_eq!(said("\x01ACTION waves\x01"), Said::Action(t("waves")));
        assert_eq!(said("\x01action waves"), Said::Action(t("waves")));
        assert_eq!(said("\x01VERSION\x01"), Said::Ctcp("VERSION".into()));
        assert_eq!(said("\x01ACTION\x01"), Said::Empty);
        assert_eq!(said("\x02\x02"), Said::Empty);
        assert_eq!(said("   "), Said::Empty);
        // Other control characters become U+FFFD, as in all natter text.
        assert_eq!(said("a\x07b"), Said::Plain(t("a\u{FFFD}b")));
    }

    #[test]
    fn splitting_keeps_every_character_once() {
        assert_eq!(split("short", 10), ["short"]);
        assert_eq!(split("", 10), [""]);
        assert_eq!(split("aaaa bbbb cccc", 10), ["aaaa bbbb ", "cccc"]);
        assert_eq!(split("abcdefghijkl", 5), ["abcde", "fghij", "kl"]);
        // A space early in the piece is not worth a short line.
        assert_eq!(split("a bcdefghij", 6), ["a bcde", "fghij"]);
        let text = "ünïcödé ".repeat(100);
        for max in [1, 2, 3, 7, 50, 401] {
            let pieces = split(&text, max);
            assert_eq!(pieces.concat(), text, "max {max}");
            assert!(pieces.iter().all(|p| !p.is_empty()));
            assert!(pieces.iter().all(|p| p.len() <= max.max(2)), "max {max}");
        }
    }
}
