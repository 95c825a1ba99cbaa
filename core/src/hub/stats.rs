//! What the hub counts for an operator: plain integers the hub bumps as it works (one addition
//! each, no allocation, no lock), read by the shell with [`Hub::stats`] and turned into metrics
//! there. Gauges that the hub's state already holds (connections by dialect and state, the
//! largest backlog) are not kept twice: [`Hub::census`] counts them when asked.
//!
//! Every label is a small fixed set (a dialect, a kind of message, a reason): nothing here is
//! per room, nick or address.

use super::dialect::Limit;
use super::{ConnKind, Hub};
use crate::wire::ClientMsg;

/// Counters, cumulative since the hub started. They only grow (wrapping after 2^64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes read from sockets ([`Hub::handle_bytes`]).
    pub bytes_in: u64,
    /// Bytes written to sockets ([`Hub::handle_written`]).
    pub bytes_out: u64,
    /// Requests run, by kind (index: [`MsgKind`] as `usize`).
    pub messages_in: [u64; MsgKind::ALL.len()],
    /// Room events queued for a member: one broadcast to N members is N deliveries.
    pub deliveries: u64,
    /// Gap markers sent (a client was told it missed a span of a room).
    pub gaps: u64,
    /// Requests that waited in the flood queue for a token.
    pub flood_delayed: u64,
    /// Requests dropped because the flood queue was full.
    pub flood_refused: u64,
    /// Nick changes refused by their own, slower bucket ([`crate::limits::NICK_BURST`]).
    pub flood_nick_refused: u64,
    /// Connections turned away, by reason (index: [`RefusedWhy`] as `usize`).
    pub refused: [u64; RefusedWhy::ALL.len()],
    /// Sessions resumed.
    pub resumes_ok: u64,
    /// Resumes asked for and refused (the token expired or was wrong): a fresh session instead.
    pub resumes_failed: u64,
    /// Sign-ins to an account that succeeded (a password, a device key, or a registration).
    pub sign_ins_ok: u64,
    /// Sign-ins refused: a wrong account name, password or device key.
    pub sign_ins_failed: u64,
    /// Sign-ins and registrations turned away by throttling, before any check.
    pub sign_ins_throttled: u64,
    /// Moderation actions done in a room (each one a line in the audit log): a kick, a ban, a
    /// mode, ... Refused ones and questions (the ban list, the settings) are not counted.
    pub moderation_room: u64,
    /// Server admins' actions done (kill, wall, server bans, take-over, close).
    pub moderation_server: u64,
}

/// The kind of a request, for [`Stats::messages_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgKind {
    /// A line said in a room.
    Say,
    /// An action (`/me`) in a room.
    Act,
    /// A direct message.
    Direct,
    /// Join.
    Join,
    /// Part.
    Part,
    /// A nick change.
    Nick,
    /// A topic change.
    Topic,
    /// Who, rooms, history, older, search: questions that change nothing.
    Query,
    /// A keepalive ping.
    Ping,
    /// Quit.
    Quit,
    /// Sign in, register, sign out, change password.
    Account,
    /// A read marker.
    Read,
    /// A moderation action or question (kick, ban, mute, modes, operators, invites, settings).
    Moderate,
}

impl MsgKind {
    /// Every kind, in index order.
    pub const ALL: [MsgKind; 13] = [
        MsgKind::Say,
        MsgKind::Act,
        MsgKind::Direct,
        MsgKind::Join,
        MsgKind::Part,
        MsgKind::Nick,
        MsgKind::Topic,
        MsgKind::Query,
        MsgKind::Ping,
        MsgKind::Quit,
        MsgKind::Account,
        MsgKind::Read,
        MsgKind::Moderate,
    ];

    /// A short stable word for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgKind::Say => "say",
            MsgKind::Act => "act",
            MsgKind::Direct => "direct",
            MsgKind::Join => "join",
            MsgKind::Part => "part",
            MsgKind::Nick => "nick",
            MsgKind::Topic => "topic",
            MsgKind::Query => "query",
            MsgKind::Ping => "ping",
            MsgKind::Quit => "quit",
            MsgKind::Account => "account",
            MsgKind::Read => "read",
            MsgKind::Moderate => "moderate",
        }
    }

    /// The kind of `msg`; `None` for handshake messages (they are not requests).
    fn of(msg: &ClientMsg) -> Option<MsgKind> {
        Some(match msg {
            ClientMsg::Say { .. } | ClientMsg::Notice { .. } => MsgKind::Say,
            ClientMsg::Act { .. } => MsgKind::Act,
            ClientMsg::Msg { .. } | ClientMsg::NoticeTo { .. } => MsgKind::Direct,
            ClientMsg::Join { .. } | ClientMsg::JoinKey { .. } => MsgKind::Join,
            ClientMsg::Part { .. } => MsgKind::Part,
            ClientMsg::Nick { .. } => MsgKind::Nick,
            ClientMsg::Topic { .. } | ClientMsg::ClearTopic { .. } => MsgKind::Topic,
            ClientMsg::Who { .. }
            | ClientMsg::Whois { .. }
            | ClientMsg::Rooms
            | ClientMsg::History { .. }
            | ClientMsg::Older { .. }
            | ClientMsg::Search { .. }
            | ClientMsg::Away(_) => MsgKind::Query,
            ClientMsg::Ping { .. } | ClientMsg::Pong { .. } => MsgKind::Ping,
            ClientMsg::Quit { .. } => MsgKind::Quit,
            ClientMsg::SignIn { .. }
            | ClientMsg::Register { .. }
            | ClientMsg::SignOut
            | ClientMsg::ChangePassword { .. }
            | ClientMsg::Devices
            | ClientMsg::ForgetDevice { .. }
            | ClientMsg::ThisDevice { .. }
            | ClientMsg::NameDevice { .. } => MsgKind::Account,
            ClientMsg::Read { .. } => MsgKind::Read,
            ClientMsg::Moderate { .. } | ClientMsg::Admin(_) => MsgKind::Moderate,
            ClientMsg::Hello { .. } | ClientMsg::Forwarded { .. } => return None,
        })
    }
}

/// Why a connection was turned away, as the refusal counts name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedWhy {
    /// Far past every limit (or shutting down): dropped without a word ([`super::Refused`]).
    Overloaded,
    /// The server was full ([`Config::max_connections`](super::Config::max_connections)).
    Full,
    /// The address had as many connections open as it may.
    PerIp,
    /// The address connected too often lately.
    ConnectRate,
    /// The per-address table was full.
    IpTable,
}

impl RefusedWhy {
    /// Every reason, in index order.
    pub const ALL: [RefusedWhy; 5] = [
        RefusedWhy::Overloaded,
        RefusedWhy::Full,
        RefusedWhy::PerIp,
        RefusedWhy::ConnectRate,
        RefusedWhy::IpTable,
    ];

    /// A short stable word for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedWhy::Overloaded => "overloaded",
            RefusedWhy::Full => "full",
            RefusedWhy::PerIp => "per_ip",
            RefusedWhy::ConnectRate => "connect_rate",
            RefusedWhy::IpTable => "ip_table",
        }
    }

    fn of(limit: Limit) -> RefusedWhy {
        match limit {
            Limit::PerIp => RefusedWhy::PerIp,
            Limit::ConnectRate => RefusedWhy::ConnectRate,
            Limit::IpTable => RefusedWhy::IpTable,
            // Only the limits above and `Connections` refuse a connection.
            _ => RefusedWhy::Full,
        }
    }
}

impl Stats {
    /// A request of `msg`'s kind runs.
    pub(super) fn message_in(&mut self, msg: &ClientMsg) {
        if let Some(k) = MsgKind::of(msg) {
            self.messages_in[k as usize] = self.messages_in[k as usize].wrapping_add(1);
        }
    }

    /// A connection was refused for `limit` (`None`: overloaded, dropped without a word).
    pub(super) fn refused(&mut self, limit: Option<Limit>) {
        let why = limit.map_or(RefusedWhy::Overloaded, RefusedWhy::of);
        self.refused[why as usize] = self.refused[why as usize].wrapping_add(1);
    }

    /// Requests run of `kind`.
    pub fn messages(&self, kind: MsgKind) -> u64 {
        self.messages_in[kind as usize]
    }

    /// Connections refused for `why`.
    pub fn refusals(&self, why: RefusedWhy) -> u64 {
        self.refused[why as usize]
    }
}

/// Where a connection is in its life, for [`Census`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted; its dialect or handshake is not done yet.
    Handshake,
    /// Through the handshake, with a nick.
    Ready,
    /// Told to close; its last words are being written.
    Closing,
}

impl ConnState {
    /// Every state, in index order.
    pub const ALL: [ConnState; 3] = [ConnState::Handshake, ConnState::Ready, ConnState::Closing];

    /// A short stable word for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Handshake => "handshake",
            ConnState::Ready => "ready",
            ConnState::Closing => "closing",
        }
    }
}

/// The dialects a [`Census`] tells apart: [`ConnKind`]s, and `None` for connections whose
/// dialect is not known yet (or no longer: a closing connection has dropped it).
pub const CENSUS_KINDS: [Option<ConnKind>; 4] = [
    None,
    Some(ConnKind::Binary),
    Some(ConnKind::Text),
    Some(ConnKind::Irc),
];

/// Gauges counted from the hub's state at one moment ([`Hub::census`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Connections, by dialect (index into [`CENSUS_KINDS`]) and state (index: [`ConnState`]
    /// as `usize`).
    pub connections: [[u64; ConnState::ALL.len()]; CENSUS_KINDS.len()],
    /// The largest outbound backlog of one connection, bytes.
    pub largest_backlog: usize,
}

impl Census {
    /// Connections of `kind` (`None`: not known) in `state`.
    pub fn count(&self, kind: Option<ConnKind>, state: ConnState) -> u64 {
        CENSUS_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.connections[i][state as usize])
    }
}

impl Hub {
    /// What the hub has counted since it started.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Counts the connections by dialect and state, and finds the largest backlog: one pass
    /// over the connections, for a shell that samples it now and then (not per message).
    pub fn census(&self) -> Census {
        let mut census = Census::default();
        for c in self.conns.values() {
            let state = if c.closing() {
                ConnState::Closing
            } else if c.user().is_some() {
                ConnState::Ready
            } else {
                ConnState::Handshake
            };
            let kind = c.kind();
            let k = CENSUS_KINDS.iter().position(|x| *x == kind).unwrap_or(0);
            census.connections[k][state as usize] += 1;
            census.largest_backlog = census.largest_backlog.max(c.backlog_bytes());
        }
        census
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's `limit=` word for a limit that refuses a connection is the metric's `reason`
    /// word for it, so an operator greps one word for both; and no limit's word has a dash
    /// (the log said `per-ip`, the metric `per_ip`, until the thirty-first session).
    #[test]
    fn the_logs_limit_words_are_the_metrics() {
        let all = [
            Limit::Connections,
            Limit::PerIp,
            Limit::ConnectRate,
            Limit::IpTable,
            Limit::Magic,
            Limit::Frame,
            Limit::Line,
            Limit::Flood,
            Limit::Queue,
            Limit::QueueHard,
            Limit::RoomsPerUser,
            Limit::Rooms,
            Limit::RoomCreates,
            Limit::RoomMembers,
            Limit::NickRate,
        ];
        for l in all {
            assert!(!l.as_str().contains('-'), "{l:?}: {}", l.as_str());
        }
        for l in [
            Limit::Connections,
            Limit::PerIp,
            Limit::ConnectRate,
            Limit::IpTable,
        ] {
            assert_eq!(l.as_str(), RefusedWhy::of(l).as_str(), "{l:?}");
        }
    }
}
