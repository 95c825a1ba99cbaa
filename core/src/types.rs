//! The protocol's nouns as types: a `Nick`, `RoomName` or `Text` is validated when it is made
//! (including when it is decoded off the wire), so an invalid one cannot exist past the parser.

use crate::limits::{
    MAX_COMBINING_RUN, MAX_DEVICE_LABEL_BYTES, MAX_NICK_LEN, MAX_ROOM_LEN, MAX_TEXT_BYTES,
};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use thiserror::Error;

/// Why a nick, room name or text was refused. The `Display` text is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidName {
    /// Empty nick.
    #[error("a nick can't be empty")]
    EmptyNick,
    /// Nick longer than the limit.
    #[error("a nick is at most {MAX_NICK_LEN} characters")]
    NickTooLong,
    /// Nick with a character outside the allowed set.
    #[error(
        "a nick starts with a letter or one of _ [ ] {{ }} ^ | and uses only letters, digits and - _ [ ] {{ }} ^ | (got {0:?})"
    )]
    NickChars(String),
    /// Room name too short, too long, or with a bad character.
    #[error("a room name is # followed by 1 to {max} letters, digits, - _ or . (got {0:?})", max = MAX_ROOM_LEN - 1)]
    Room(String),
    /// Empty chat text.
    #[error("that message is empty")]
    EmptyText,
    /// Chat text longer than the limit.
    #[error("that message is {0} bytes long; the limit is {MAX_TEXT_BYTES}")]
    TextTooLong(usize),
    /// A device label with nothing visible in it.
    #[error("a device label can't be empty")]
    EmptyLabel,
    /// A device label longer than the limit.
    #[error("that device label is {0} bytes long; the limit is {MAX_DEVICE_LABEL_BYTES}")]
    LabelTooLong(usize),
}

/// A short checked name held inline: at most `N` bytes of ASCII, then zeros. It compares,
/// orders, hashes and prints as its text, as the `String` it replaced did. Every member's record
/// holds a nick and its rooms' names: on the heap, each cost an allocation (issue 22's idle
/// memory).
#[derive(Clone)]
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    const FITS: () = assert!(N <= u8::MAX as usize);

    /// `name`, checked by the caller; cut at `N` bytes (never: the callers check the length).
    fn new(name: &str) -> Inline<N> {
        let () = Self::FITS;
        let mut bytes = [0u8; N];
        let len = name.len().min(N);
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        Inline {
            len: u8::try_from(len).unwrap_or(u8::MAX),
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        // Always ASCII: only checked names are stored.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The name's bytes: compared and ordered as they are (UTF-8 orders as its bytes do), so
    /// room and nick lookups need no UTF-8 check.
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl<const N: usize> PartialEq for Inline<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for Inline<N> {}

impl<const N: usize> PartialOrd for Inline<N> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for Inline<N> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl<const N: usize> core::hash::Hash for Inline<N> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<const N: usize> core::fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The nicks of the services IRC networks run (ergo, Atheme, Anope). IRC clients send them
/// passwords (`/msg NickServ IDENTIFY ...`, and the auto-identify settings of irssi and WeeChat),
/// and natter runs none: a guest holding one of these nicks would be sent those passwords, so
/// nobody may hold them, and a message to one is answered by the server, never relayed.
pub const SERVICE_NICKS: [&str; 7] = [
    "NickServ", "ChanServ", "OperServ", "MemoServ", "HostServ", "BotServ", "SaslServ",
];

/// A user's nick: 1 to [`MAX_NICK_LEN`] ASCII characters, a letter (or one of `_[]{}^|`) first,
/// then letters, digits and `-_[]{}^|`. Kept as typed; compared case-insensitively via
/// [`Nick::folded`].
///
/// Held inline (at most [`MAX_NICK_LEN`] bytes), not on the heap, like [`RoomName`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nick(Inline<MAX_NICK_LEN>);

impl Nick {
    /// Validates `s` as a nick.
    pub fn new(s: &str) -> Result<Nick, InvalidName> {
        if s.is_empty() {
            return Err(InvalidName::EmptyNick);
        }
        if s.len() > MAX_NICK_LEN {
            return Err(InvalidName::NickTooLong);
        }
        let special = |c: char| matches!(c, '_' | '[' | ']' | '{' | '}' | '^' | '|');
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || special(c));
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || special(c));
        if !(first_ok && rest_ok) {
            return Err(InvalidName::NickChars(s.chars().take(40).collect()));
        }
        Ok(Nick(Inline::new(s)))
    }

    /// The nick as typed.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The form used for uniqueness: ASCII lower case (`Alice` and `alice` are one nick).
    pub fn folded(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// [`Nick::folded`], inline (no allocation).
    pub fn folded_key(&self) -> FoldedNick {
        let mut key = self.0.clone();
        key.bytes.make_ascii_lowercase();
        FoldedNick(key)
    }

    /// Whether it names an IRC network service ([`SERVICE_NICKS`]), which nobody may hold.
    pub fn is_service(&self) -> bool {
        SERVICE_NICKS
            .iter()
            .any(|s| self.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether it is a guest nick as the server hands them out (`guest` and digits): those are
    /// never registered as accounts.
    pub fn is_guest(&self) -> bool {
        self.folded()
            .strip_prefix("guest")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// A nick's folded form ([`Nick::folded`]) held inline: the key of the hub's nick table, where
/// a `String` cost every user a heap allocation (issue 22). Hashes and compares as its `str`,
/// so the table is looked up by `&str` too.
#[derive(Clone)]
pub struct FoldedNick(Inline<MAX_NICK_LEN>);

impl FoldedNick {
    /// The folded nick.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for FoldedNick {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for FoldedNick {}

impl core::hash::Hash for FoldedNick {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes: `Borrow<str>` lookups must find it.
        self.as_str().hash(state);
    }
}

impl core::borrow::Borrow<str> for FoldedNick {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl core::fmt::Debug for FoldedNick {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl TryFrom<String> for Nick {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Nick, InvalidName> {
        Nick::new(&s)
    }
}

impl TryFrom<&str> for Nick {
    type Error = InvalidName;
    fn try_from(s: &str) -> Result<Nick, InvalidName> {
        Nick::new(s)
    }
}

impl From<Nick> for String {
    fn from(n: Nick) -> String {
        n.as_str().to_owned()
    }
}

impl core::fmt::Display for Nick {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A room name: `#` then 1 to `MAX_ROOM_LEN - 1` of `a-z 0-9 - _ .`. Upper case is folded to lower
/// case when the name is made, so `#Rust` and `#rust` are one room.
///
/// Held inline (at most [`MAX_ROOM_LEN`] bytes), not on the heap: every member's list of rooms
/// and scroll cursor hold a copy, and a heap copy cost an allocation each (issue 22's idle
/// memory). It compares, orders and hashes as its text, as it did as a `String`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Inline<MAX_ROOM_LEN>);

impl RoomName {
    /// The room every text-mode user starts in, and the CLI's and page's default.
    pub fn lobby() -> RoomName {
        RoomName(Inline::new("#lobby"))
    }

    /// Validates `s` as a room name. A missing leading `#` is added (`rust` means `#rust`).
    pub fn new(s: &str) -> Result<RoomName, InvalidName> {
        let body = s.strip_prefix('#').unwrap_or(s);
        if !RoomName::body_ok(body) {
            return Err(InvalidName::Room(s.chars().take(40).collect()));
        }
        Ok(RoomName(Inline::new(&format!(
            "#{}",
            body.to_ascii_lowercase()
        ))))
    }

    /// Whether `body` (the name without its `#`) is a room name, in any case.
    fn body_ok(body: &str) -> bool {
        !body.is_empty()
            && body.len() < MAX_ROOM_LEN
            && body
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }

    /// The name, with its `#`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<String> for RoomName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<RoomName, InvalidName> {
        RoomName::try_from(s.as_str())
    }
}

impl TryFrom<&str> for RoomName {
    type Error = InvalidName;
    fn try_from(s: &str) -> Result<RoomName, InvalidName> {
        // On the wire the name must already be canonical (`new` would also accept `rust` and
        // `#Rust`).
        match s.strip_prefix('#') {
            Some(body)
                if RoomName::body_ok(body) && !body.bytes().any(|c| c.is_ascii_uppercase()) =>
            {
                Ok(RoomName(Inline::new(s)))
            }
            _ => Err(InvalidName::Room(s.chars().take(40).collect())),
        }
    }
}

impl From<RoomName> for String {
    fn from(r: RoomName) -> String {
        r.as_str().to_owned()
    }
}

impl core::fmt::Display for RoomName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Chat text people see: 1 to [`MAX_TEXT_BYTES`] bytes of UTF-8, cleaned by [`sanitize`] when it
/// is made (no control characters, bidi overrides, line separators or invisible characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Text(String);

impl Text {
    /// Validates and cleans `s`. Leading and trailing whitespace is kept (people indent code).
    pub fn new(s: &str) -> Result<Text, InvalidName> {
        Text::cleaned(Cow::Borrowed(s))
    }

    /// [`Text::new`] for a borrowed or owned string; clean text (the usual case) is kept as
    /// it is, not copied.
    fn cleaned(s: Cow<'_, str>) -> Result<Text, InvalidName> {
        if s.trim().is_empty() {
            return Err(InvalidName::EmptyText);
        }
        // Measured after cleaning: a replacement character is longer than what it replaces.
        // Printable ASCII (most lines) is plain: checked a byte at a time, without decoding.
        let plain = s.bytes().all(|b| matches!(b, b' '..=b'~'))
            || s.chars().all(|c| class(c) == Class::Plain);
        let clean = if !plain { sanitize(&s) } else { s.into_owned() };
        if clean.trim().is_empty() {
            // Nothing but invisible characters.
            return Err(InvalidName::EmptyText);
        }
        if clean.len() > MAX_TEXT_BYTES {
            return Err(InvalidName::TextTooLong(clean.len()));
        }
        Ok(Text(clean))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Makes text safe to show in a terminal and on a page, in one pass:
/// - what a terminal would act on (C0/C1 controls, DEL) and bidi overrides and isolates become
///   U+FFFD; a tab becomes a space;
/// - line and paragraph separators (U+2028, U+2029), which break lines on the page, become spaces;
/// - invisible characters (zero-width space, word joiner, BOM, invisible operators, the Mongolian
///   vowel separator) and bidi marks (LRM, RLM, ALM) are dropped;
/// - a zero-width joiner or non-joiner is kept (emoji sequences and many scripts need them) but a
///   run of them is cut to one;
/// - a run of combining marks on one character is cut to [`MAX_COMBINING_RUN`] (no "Zalgo" text
///   spilling over the lines around it).
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut marks, mut joiners) = (0, 0);
    for c in s.chars() {
        match class(c) {
            Class::Plain => {
                (marks, joiners) = (0, 0);
                out.push(c);
            }
            Class::Replace(r) => {
                (marks, joiners) = (0, 0);
                out.push(r);
            }
            Class::Drop => {}
            Class::Mark => {
                marks += 1;
                if marks <= MAX_COMBINING_RUN {
                    out.push(c);
                }
            }
            Class::Joiner => {
                joiners += 1;
                if joiners == 1 {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// Whether [`sanitize`] replaces or drops `c`: a control character, a bidi override, isolate or
/// mark, a line separator, an invisible character. For text written as it came, never stored
/// (the names an IRC numeric echoes), that leaves such characters out.
pub(crate) fn shown_unsafely(c: char) -> bool {
    matches!(class(c), Class::Replace(_) | Class::Drop)
}

/// What [`sanitize`] does with a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Plain,
    Replace(char),
    Drop,
    Mark,
    Joiner,
}

fn class(c: char) -> Class {
    match c {
        '\t' | '\u{2028}' | '\u{2029}' => Class::Replace(' '),
        c if c.is_control() => Class::Replace('\u{FFFD}'),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Class::Replace('\u{FFFD}'),
        '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' => Class::Drop,
        '\u{200E}' | '\u{200F}' | '\u{061C}' => Class::Drop,
        '\u{200C}' | '\u{200D}' => Class::Joiner,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}' => Class::Mark,
        _ => Class::Plain,
    }
}

impl TryFrom<String> for Text {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Text, InvalidName> {
        Text::cleaned(Cow::Owned(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl core::fmt::Display for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a remembered device is called (`natter on laptop`, `Chromium on Linux`): chosen by its
/// client when it asks to be remembered, or given with `/devices name`. 1 to
/// [`MAX_DEVICE_LABEL_BYTES`] bytes, cleaned as [`Text`] is ([`sanitize`]), then with its
/// whitespace trimmed and every run of it one space: a label is shown inside a line of
/// `/devices` and in a cell of the page's panel, where a tab or a line break would only
/// mislead. Shown to the account's own devices only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceLabel(String);

impl DeviceLabel {
    /// Validates and cleans `s`.
    pub fn new(s: &str) -> Result<DeviceLabel, InvalidName> {
        let label = clean_label(s);
        if label.is_empty() {
            return Err(InvalidName::EmptyLabel);
        }
        if label.len() > MAX_DEVICE_LABEL_BYTES {
            return Err(InvalidName::LabelTooLong(label.len()));
        }
        Ok(DeviceLabel(label))
    }

    /// `s` cleaned as [`DeviceLabel::new`] does and cut to [`MAX_DEVICE_LABEL_BYTES`] at a
    /// character boundary, for a label a client makes up itself (a long hostname, a browser's
    /// name): `None` when nothing visible is left.
    pub fn cut(s: &str) -> Option<DeviceLabel> {
        let clean = clean_label(s);
        let mut end = clean.len().min(MAX_DEVICE_LABEL_BYTES);
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        DeviceLabel::new(&clean[..end]).ok()
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `s` as one line: every run of whitespace (a tab, a line break) one space, none at the ends,
/// then [`sanitize`]d (whitespace again, around what it dropped).
fn clean_label(s: &str) -> String {
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    words(&sanitize(&words(s)))
}

impl TryFrom<&str> for DeviceLabel {
    type Error = InvalidName;
    fn try_from(s: &str) -> Result<DeviceLabel, InvalidName> {
        DeviceLabel::new(s)
    }
}

impl Serialize for DeviceLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DeviceLabel, D::Error> {
        d.deserialize_str(FromStr::new("a device label"))
    }
}

impl core::fmt::Display for DeviceLabel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A connection, as the hub numbers them. Never reused within one hub.
///
/// It carries two numbers: the connection's sequence number ([`ConnId::seq`]: 1 for the hub's
/// first connection, then +1 per connection, never reused) in the high bits, and the slot of
/// the hub's table that holds it ([`ConnId::slot`], reused once the connection is gone) in the
/// low [`ConnId::SLOT_BITS`]. Ids order as their sequence numbers do (the order connections
/// came in), and show as `c` and the sequence number (`c1`, `c2`, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Bits of the slot: up to 16,777,216 connections at once.
    pub const SLOT_BITS: u32 = 24;
    /// The highest slot.
    pub const MAX_SLOT: u32 = (1 << Self::SLOT_BITS) - 1;
    /// The highest sequence number: about 10^12 connections over a hub's life.
    pub const MAX_SEQ: u64 = u64::MAX >> Self::SLOT_BITS;

    /// The id of connection number `seq` in slot `slot`; `None` if either is out of range.
    pub fn new(seq: u64, slot: u32) -> Option<ConnId> {
        (seq <= Self::MAX_SEQ && slot <= Self::MAX_SLOT)
            .then(|| ConnId((seq << Self::SLOT_BITS) | u64::from(slot)))
    }

    /// The connection's sequence number: unique over the hub's life, in the order connections
    /// came in.
    pub fn seq(self) -> u64 {
        self.0 >> Self::SLOT_BITS
    }

    /// The slot of the hub's table that holds the connection.
    pub fn slot(self) -> usize {
        (self.0 & u64::from(Self::MAX_SLOT)) as usize
    }
}

impl core::fmt::Display for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "c{}", self.seq())
    }
}

impl core::fmt::Debug for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ConnId(c{}@{})", self.seq(), self.slot())
    }
}

/// A room event's position in its room: assigned by the server, 1 for the first event of a room,
/// then +1 per event. Seqs of different rooms are unrelated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The seq after this one.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl core::fmt::Display for Seq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A client-chosen message id. A client numbers its messages with strictly increasing ids for the
/// life of its session (across reconnects); the server drops a say/act/DM whose id is not above
/// the last one it accepted from that user, and acknowledges it instead, so a resend after a
/// reconnect is delivered once.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct MsgId(pub u64);

/// A 32-byte credential: an id (the first `ID_LEN` bytes, which the server looks it up by; not
/// secret) and a secret (the rest, which the server keeps only a hash of and compares in
/// constant time). Its `Debug` shows the id, never the secret.
macro_rules! credential {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Bytes of the id.
            pub const ID_LEN: usize = 8;

            /// The id, which names it (not secret).
            pub fn id(&self) -> u64 {
                let mut id = [0u8; Self::ID_LEN];
                id.copy_from_slice(&self.0[..Self::ID_LEN]);
                u64::from_be_bytes(id)
            }

            /// The secret part.
            pub fn secret(&self) -> &[u8] {
                &self.0[Self::ID_LEN..]
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                // A credential: its secret is never logged.
                write!(f, concat!(stringify!($name), "(id {:016x}, secret …)"), self.id())
            }
        }
    };
}

credential! {
    /// The credential a client presents to resume its session after a reconnect: an id (the
    /// first [`ResumeToken::ID_LEN`] bytes, which the server looks the session up by) and a
    /// secret (the rest, which it compares in constant time with the hash it keeps). Every
    /// welcome issues a new one; the one before stops working.
    ResumeToken
}

credential! {
    /// A device's long-lived sign-in key: issued on a sign-in that asked to be remembered, shown
    /// instead of the password on later sign-ins (the page keeps it across reloads), and
    /// revoked by signing out on that device or by a password change. Like a [`ResumeToken`],
    /// an id the server looks it up by and a secret it keeps only a hash of.
    DeviceKey
}

/// A password as a client sends it. Never logged, never stored: the server keeps an argon2id
/// hash of it. Its length is checked by the server (see [`crate::limits::PASSWORD_MIN_CHARS`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Password(pub String);

impl core::fmt::Debug for Password {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Password(…)")
    }
}

// Serialized as their text, as `String`s are (the same bytes on the wire), but without the
// `String` that `serde(into = "String")` made for every nick, room name and line encoded: a
// member list of 100 nicks was 100 allocations per encoding (issue 22's connect burst).
impl Serialize for Nick {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for RoomName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

// Deserialized from a `str` (borrowed from the input where the format allows, as bincode's
// does), not through a `String` as `serde(try_from = "String")` did: two small allocations per
// hello and join decoded, which a connect burst left free between the connections' records
// (issue 22's idle memory). The same checks, the same errors.
impl<'de> Deserialize<'de> for Nick {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Nick, D::Error> {
        d.deserialize_str(FromStr::new("a nick"))
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RoomName, D::Error> {
        d.deserialize_str(FromStr::new("a room name"))
    }
}

/// A visitor that makes a `T` from a string, through `T`'s `TryFrom<&str>`.
struct FromStr<T> {
    what: &'static str,
    made: core::marker::PhantomData<T>,
}

impl<T> FromStr<T> {
    fn new(what: &'static str) -> FromStr<T> {
        FromStr {
            what,
            made: core::marker::PhantomData,
        }
    }
}

impl<T> serde::de::Visitor<'_> for FromStr<T>
where
    T: for<'a> TryFrom<&'a str, Error = InvalidName>,
{
    type Value = T;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        T::try_from(s).map_err(E::custom)
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resume token and a device key are logged by their id alone: the secret bytes after
    /// it appear nowhere in their `Debug`.
    #[test]
    fn credentials_show_their_id_and_never_their_secret() {
        let mut bytes = [0xabu8; 32];
        bytes[..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let token = format!("{:?}", ResumeToken(bytes));
        let key = format!("{:?}", DeviceKey(bytes));
        assert_eq!(token, "ResumeToken(id 0102030405060708, secret …)");
        assert_eq!(key, "DeviceKey(id 0102030405060708, secret …)");
        assert_eq!(ResumeToken(bytes).secret(), &[0xab; 24]);
        assert_eq!(DeviceKey(bytes).id(), 0x0102_0304_0506_0708);
    }

    /// Nicks, room names and text go on the wire exactly as the `String`s they were
    /// serialized as before (now without making one).
    #[test]
    fn names_and_text_encode_as_their_strings() {
        use crate::wire::encode_payload;
        let nick = Nick::new("Alice").unwrap();
        let room = RoomName::new("#lobby").unwrap();
        let text = Text::new("hello there").unwrap();
        assert_eq!(
            encode_payload(&(&nick, &room, &text)).unwrap(),
            encode_payload(&(
                "Alice".to_owned(),
                "#lobby".to_owned(),
                "hello there".to_owned()
            ))
            .unwrap()
        );
    }

    /// Nicks and room names decode from the bytes a `String` encodes to, with the same
    /// checks as before (a room name on the wire must be canonical).
    #[test]
    fn names_decode_from_their_strings_with_the_same_checks() {
        use crate::wire::encode_payload;
        let decode = |v: (&str, &str)| {
            let bytes = encode_payload(&(v.0.to_owned(), v.1.to_owned())).unwrap();
            crate::wire::decode_payload::<(Nick, RoomName)>(&bytes)
        };
        let (nick, room) = decode(("Alice", "#rust-1.x_y")).unwrap();
        assert_eq!(nick.as_str(), "Alice");
        assert_eq!(room.as_str(), "#rust-1.x_y");
        assert!(decode(("9lives", "#rust")).is_err());
        assert!(decode(("Alice", "#Rust")).is_err());
        assert!(decode(("Alice", "rust")).is_err());
        assert!(decode(("Alice", "#a b")).is_err());
    }

    #[test]
    fn a_folded_key_is_the_folded_nick_and_is_found_by_str() {
        let mut table = std::collections::HashMap::new();
        for typed in ["Alice", "[BoT]_2", "zzzzzzzzzzzzzzzZ"] {
            let n = Nick::new(typed).unwrap();
            assert_eq!(n.folded_key().as_str(), n.folded());
            table.insert(n.folded_key(), typed);
        }
        assert_eq!(table.get("alice"), Some(&"Alice"));
        assert_eq!(table.get("[bot]_2"), Some(&"[BoT]_2"));
        assert_eq!(table.get("zzzzzzzzzzzzzzzz"), Some(&"zzzzzzzzzzzzzzzZ"));
        assert_eq!(table.get("Alice"), None);
        let other_case = Nick::new("ALICE").unwrap().folded_key();
        assert!(table.contains_key(other_case.as_str()));
        assert_eq!(other_case, Nick::new("alice").unwrap().folded_key());
    }

    #[test]
    fn nicks() {
        assert!(Nick::new("alice").is_ok());
        assert!(Nick::new("[bot]_2").is_ok());
        assert_eq!(Nick::new(""), Err(InvalidName::EmptyNick));
        assert_eq!(
            Nick::new("a234567890123456x"),
            Err(InvalidName::NickTooLong)
        );
        assert!(matches!(
            Nick::new("9lives"),
            Err(InvalidName::NickChars(_))
        ));
        assert!(matches!(Nick::new("a b"), Err(InvalidName::NickChars(_))));
        assert!(matches!(Nick::new("é"), Err(InvalidName::NickChars(_))));
        assert_eq!(Nick::new("Alice").unwrap().folded(), "alice");
    }

    /// The words a refused nick gets name every first character a nick may have: `_x` and
    /// `[bot]` are nicks (PROTOCOL.md's `Nick`, IRC's), so "starts with a letter" alone sent
    /// the person typing `/nick 9lives` away from `_9lives`.
    #[test]
    fn a_refused_nick_is_told_what_a_nick_may_start_with() {
        assert!(Nick::new("_x").is_ok() && Nick::new("[bot]").is_ok() && Nick::new("|x").is_ok());
        let words = Nick::new("9lives").unwrap_err().to_string();
        assert_eq!(
            words,
            "a nick starts with a letter or one of _ [ ] { } ^ | and uses only letters, \
             digits and - _ [ ] { } ^ | (got \"9lives\")"
        );
    }

    #[test]
    fn rooms() {
        assert_eq!(RoomName::new("#Rust").unwrap().as_str(), "#rust");
        assert_eq!(RoomName::new("rust").unwrap().as_str(), "#rust");
        assert!(RoomName::new("#").is_err());
        assert!(RoomName::new("#a b").is_err());
        assert!(RoomName::new(&"x".repeat(MAX_ROOM_LEN)).is_err());
        assert!(RoomName::new(&"x".repeat(MAX_ROOM_LEN - 1)).is_ok());
        // On the wire only the canonical form is accepted.
        assert!(RoomName::try_from("#Rust".to_owned()).is_err());
        assert!(RoomName::try_from("rust".to_owned()).is_err());
        assert!(RoomName::try_from("#a b".to_owned()).is_err());
        assert!(RoomName::try_from("#".to_owned()).is_err());
        assert!(RoomName::try_from(format!("#{}", "x".repeat(MAX_ROOM_LEN))).is_err());
        assert_eq!(
            RoomName::try_from("#rust-1.x_y".to_owned())
                .unwrap()
                .as_str(),
            "#rust-1.x_y"
        );
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        let t = Text::new("hi \x1b[2Jthere\tyou\u{202E}").unwrap();
        assert_eq!(t.as_str(), "hi \u{FFFD}[2Jthere you\u{FFFD}");
        assert!(!t.as_str().contains('\x1b'));
        assert_eq!(Text::new("   "), Err(InvalidName::EmptyText));
        // From the wire (an owned string): cleaned the same way, kept as it is when clean.
        let wire = |s: &str| Text::try_from(s.to_owned()).map(String::from);
        assert_eq!(wire("a\x07b\tc\u{2066}").unwrap(), "a\u{FFFD}b c\u{FFFD}");
        assert_eq!(wire("  indented é ").unwrap(), "  indented é ");
        assert_eq!(wire(" \t "), Err(InvalidName::EmptyText));
        let grows = "\x07".repeat(MAX_TEXT_BYTES / 2);
        assert_eq!(
            wire(&grows),
            Err(InvalidName::TextTooLong(MAX_TEXT_BYTES / 2 * 3))
        );
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            Text::new(&long),
            Err(InvalidName::TextTooLong(MAX_TEXT_BYTES + 1))
        );
        assert!(
            InvalidName::TextTooLong(3000)
                .to_string()
                .contains("limit is 2000")
        );
    }

    #[test]
    fn separators_invisibles_marks_and_zalgo_are_cleaned() {
        let clean = |s: &str| Text::new(s).map(String::from);
        // Line and paragraph separators break lines on the page: spaces.
        assert_eq!(clean("a\u{2028}b\u{2029}c").unwrap(), "a b c");
        // Invisible characters and bidi marks are dropped.
        assert_eq!(
            clean("ad\u{200B}min\u{2060}\u{FEFF} \u{200E}x\u{200F}\u{061C}").unwrap(),
            "admin x"
        );
        // Joiners stay (an emoji family, Persian), but a run of them is one.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(clean(family).unwrap(), family);
        assert_eq!(clean("a\u{200C}\u{200C}\u{200D}b").unwrap(), "a\u{200C}b");
        // Stacked marks are cut to a few per character; ordinary accents are untouched.
        let zalgo = format!("z{}a", "\u{0301}\u{0316}\u{0350}".repeat(20));
        let got = clean(&zalgo).unwrap();
        assert_eq!(got.chars().count(), 2 + MAX_COMBINING_RUN, "{got:?}");
        assert_eq!(
            clean("Tie\u{0302}\u{0301}ng Vie\u{0323}\u{0302}t").unwrap(),
            "Tie\u{0302}\u{0301}ng Vie\u{0323}\u{0302}t"
        );
        // Text of nothing but invisible characters is empty.
        assert_eq!(clean("\u{200B}\u{FEFF}"), Err(InvalidName::EmptyText));
    }

    /// A device label is cleaned as text is, its whitespace made single spaces, and bounded;
    /// `cut` shortens what a client made up itself instead of refusing it.
    #[test]
    fn device_labels_are_cleaned_and_bounded() {
        let label = |s: &str| DeviceLabel::new(s).map(|l| l.as_str().to_owned());
        assert_eq!(
            label("  natter on\tlaptop \n"),
            Ok("natter on laptop".into())
        );
        // A bidi override cannot turn the line around; an invisible character goes.
        assert_eq!(label("evil\u{202E}pc\u{200B}"), Ok("evil\u{FFFD}pc".into()));
        assert_eq!(label(" \u{200B} "), Err(InvalidName::EmptyLabel));
        let long = "é".repeat(MAX_DEVICE_LABEL_BYTES / 2 + 1);
        assert_eq!(label(&long), Err(InvalidName::LabelTooLong(long.len())));
        let cut = DeviceLabel::cut(&long).unwrap();
        assert_eq!(cut.as_str(), "é".repeat(MAX_DEVICE_LABEL_BYTES / 2));
        let odd = format!("a{}", "é".repeat(MAX_DEVICE_LABEL_BYTES));
        assert!(DeviceLabel::cut(&odd).unwrap().as_str().len() == MAX_DEVICE_LABEL_BYTES - 1);
        assert_eq!(DeviceLabel::cut("\u{200B}"), None);
        // On the wire it is its string; a decoded label is checked as a made one.
        use crate::wire::{decode_payload, encode_payload};
        let wire = encode_payload(&"natter on laptop".to_owned()).unwrap();
        assert_eq!(
            encode_payload(&DeviceLabel::new("natter on laptop").unwrap()).unwrap(),
            wire
        );
        assert_eq!(
            decode_payload::<DeviceLabel>(&wire).unwrap().as_str(),
            "natter on laptop"
        );
        let bad = encode_payload(&" \u{FEFF} ".to_owned()).unwrap();
        assert!(decode_payload::<DeviceLabel>(&bad).is_err());
    }
}
