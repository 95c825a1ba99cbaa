//! What the chat model keeps of a room's moderation: who is in charge (founder, operators),
//! who is voiced, its modes, and its ban and mute lists when they were asked for. UIs read it to
//! mark members (`@` operators, `+` voiced) and to offer operators their actions; the server
//! decides, so a stale view costs at most a refused request.

use crate::moderation::{Entry, Modes};
use crate::types::Nick;

/// A member's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Anyone else.
    Member,
    /// Speaks in a `+m` room.
    Voiced,
    /// An operator.
    Operator,
    /// The account that registered the room.
    Founder,
}

impl Role {
    /// The mark a member list shows before the nick: `~`, `@`, `+` or nothing.
    pub fn mark(self) -> &'static str {
        match self {
            Role::Founder => "~",
            Role::Operator => "@",
            Role::Voiced => "+",
            Role::Member => "",
        }
    }
}

/// A room's settings as the server last sent them ([`Event::Policy`](crate::session::Event::Policy),
/// [`Event::BanList`](crate::session::Event::BanList)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPolicy {
    /// The founder's account (`None`: unregistered, nobody is in charge).
    pub founder: Option<Nick>,
    /// Operators' accounts.
    pub ops: Vec<Nick>,
    /// Voiced accounts or nicks.
    pub voiced: Vec<Nick>,
    /// Modes.
    pub modes: Modes,
    /// Bans, once asked for ([`ModAction::Bans`](crate::wire::ModAction::Bans)); `None` before.
    pub bans: Option<Vec<Entry>>,
    /// Mutes, as the bans.
    pub mutes: Option<Vec<Entry>>,
    /// The room's settings changed since the bans were last fetched (an operator, maybe
    /// another one, banned or lifted someone): a UI showing them asks again.
    pub bans_stale: bool,
}

impl RoomPolicy {
    /// The standing of `name`: an account, or a member's nick. Operator status belongs to
    /// accounts and the client sees members by nick; a signed-in member's nick is its account
    /// name unless it renamed, so a member whose nick names the founder's or an operator's
    /// account is shown as one.
    pub fn role(&self, name: &Nick) -> Role {
        let is = |n: &Nick| n.folded() == name.folded();
        if self.founder.as_ref().is_some_and(is) {
            Role::Founder
        } else if self.ops.iter().any(is) {
            Role::Operator
        } else if self.voiced.iter().any(is) {
            Role::Voiced
        } else {
            Role::Member
        }
    }

    /// Whether `account` (ours, when signed in) may moderate: it is the founder or an operator.
    pub fn is_op(&self, account: Option<&Nick>) -> bool {
        account.is_some_and(|a| self.role(a) >= Role::Operator)
    }
}
