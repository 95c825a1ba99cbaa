//! IRCv3 capabilities natter offers, and a client's set of them. Negotiation itself
//! (`CAP LS/REQ/END/LIST`) is in `read.rs`.

/// A capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // `CapNotify` is the capability's name.
pub(super) enum Cap {
    /// `account-notify`: co-members signing in to an account (`ACCOUNT`).
    AccountNotify,
    /// `account-tag`: the `account` tag on what signed-in users do.
    AccountTag,
    /// `away-notify`: co-members' AWAY changes.
    AwayNotify,
    /// `batch`: related lines grouped (labeled responses, history on join).
    Batch,
    /// `cap-notify`: always on with `CAP LS 302`; natter's caps never change while connected.
    CapNotify,
    /// `draft/chathistory`: `CHATHISTORY` asks for the past; a JOIN brings no history of its
    /// own then (the client asks for what it wants).
    ChatHistory,
    /// `echo-message`: one's own messages come back, as others see them.
    EchoMessage,
    /// `extended-join`: a JOIN line says the joiner's account (or `*`) and real name.
    ExtendedJoin,
    /// `extended-monitor`: a monitored nick's `AWAY`, `ACCOUNT` and `SETNAME` come as
    /// co-members' do (with `away-notify`, `account-notify`, `setname`), shared channel or not.
    ExtendedMonitor,
    /// `labeled-response`: a client's `label` tag comes back on the answer (with `batch`).
    LabeledResponse,
    /// `message-tags`: tags on messages (`msgid`), and tags from clients accepted.
    MessageTags,
    /// `multi-prefix`: every prefix of a member in NAMES and WHO.
    MultiPrefix,
    /// `server-time`: the `time` tag.
    ServerTime,
    /// `setname`: `SETNAME` changes one's real name; co-members' changes come as `SETNAME`.
    SetName,
    /// `sasl`: `AUTHENTICATE PLAIN` signs in to an account before registration.
    Sasl,
    /// `userhost-in-names`: NAMES lists each member as `nick!user@host`.
    UserhostInNames,
    /// `chghost`: a co-member's new user name (natter's is the nick) after its NICK.
    ChgHost,
    /// `invite-notify`: another member's `INVITE` to a channel one may invite to oneself (an
    /// operator of an invite-only channel, any member of another).
    InviteNotify,
}

/// Every capability with its name, in the order `CAP LS` lists them.
const ALL: [(Cap, &str); 18] = [
    (Cap::AccountNotify, "account-notify"),
    (Cap::AccountTag, "account-tag"),
    (Cap::AwayNotify, "away-notify"),
    (Cap::Batch, "batch"),
    (Cap::CapNotify, "cap-notify"),
    (Cap::ChgHost, "chghost"),
    (Cap::ChatHistory, "draft/chathistory"),
    (Cap::EchoMessage, "echo-message"),
    (Cap::ExtendedJoin, "extended-join"),
    (Cap::ExtendedMonitor, "extended-monitor"),
    (Cap::InviteNotify, "invite-notify"),
    (Cap::LabeledResponse, "labeled-response"),
    (Cap::MessageTags, "message-tags"),
    (Cap::MultiPrefix, "multi-prefix"),
    (Cap::ServerTime, "server-time"),
    (Cap::SetName, "setname"),
    (Cap::Sasl, "sasl"),
    (Cap::UserhostInNames, "userhost-in-names"),
];

impl Cap {
    /// The capability called `name`, if natter has it.
    pub(super) fn named(name: &str) -> Option<Cap> {
        ALL.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The names of every capability, space-separated (`CAP LS`); `CAP LS 302` also gets their
/// values (`sasl=PLAIN`).
pub(super) fn offered(v302: bool) -> String {
    ALL.map(|(c, n)| match c {
        Cap::Sasl if v302 => "sasl=PLAIN",
        _ => n,
    })
    .join(" ")
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Caps(u32);

impl Caps {
    /// Whether `cap` is in the set.
    pub(super) fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Adds or removes `cap`.
    pub(super) fn set(&mut self, cap: Cap, on: bool) {
        if on {
            self.0 |= cap.bit();
        } else {
            self.0 &= !cap.bit();
        }
    }

    /// The names of those in the set, space-separated (`CAP LIST`).
    pub(super) fn names(self) -> String {
        ALL.iter()
            .filter(|(c, _)| self.has(*c))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The set after a `CAP REQ` of `list` (names, `-name` to remove), or `None` if it names
    /// a capability natter does not have (then nothing changes: the whole request is refused).
    pub(super) fn requested(self, list: &str) -> Option<Caps> {
        let mut caps = self;
        for word in list.split(' ').filter(|w| !w.is_empty()) {
            let (name, on) = match word.strip_prefix('-') {
                Some(name) => (name, false),
                None => (word, true),
            };
            caps.set(Cap::named(name)?, on);
        }
        Some(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_all_or_nothing() {
        let caps = Caps::default()
            .requested("server-time  echo-message")
            .unwrap();
        assert!(caps.has(Cap::ServerTime) && caps.has(Cap::EchoMessage));
        assert!(!caps.has(Cap::Batch));
        assert_eq!(caps.names(), "echo-message server-time");
        assert_eq!(caps.requested("batch frobnicate"), None);
        let less = caps.requested("-echo-message batch").unwrap();
        assert_eq!(less.names(), "batch server-time");
        assert!(offered(false).starts_with("account-notify account-tag away-notify batch"));
        assert!(offered(false).contains(" draft/chathistory "));
        assert!(offered(false).ends_with(" sasl userhost-in-names"));
        assert!(offered(true).ends_with(" sasl=PLAIN userhost-in-names"));
        assert!(ALL.iter().all(|(c, n)| Cap::named(n) == Some(*c)));
    }
}
