//! Moderation: a room's founder and operators, kick, ban, mute, invite-only and keys, and the
//! server's admins.
//!
//! # Rules
//! - A signed-in member registers a room and becomes its founder; only the founder (or a
//!   server admin, an account named in `[accounts] admins`) makes and unmakes operators, who
//!   must be signed in (operator status belongs to accounts, not to nicks).
//! - Operators kick, ban, mute, invite, voice and set modes. The founder cannot be kicked,
//!   banned or muted by an operator; nobody bans or mutes themselves.
//! - A ban names an account, a nick or a network. Banning a present member by nick takes the
//!   person: its account when it is signed in (every device, every nick), else its nick and its
//!   address. Members it holds leave at once; it keeps them out of joins until it runs out.
//! - Every action is a room event (`Kick` or `Mode`) the members see and history keeps; the
//!   room's settings go to its members whenever they change, and into the store.
//! - Bans and mutes per room are capped ([`MAX_BANS_PER_ROOM`]), durations at a year, masks
//!   validated; a registered room (or one with settings still) outlives its last member.

use super::deliver::Skip;
use super::dialect::{AdminDone, Note, Reply, irc_shown_mask};
use super::ops::NO_ROOM;
use super::room::Invite;
use super::timers::Timer;
use super::{Hub, UserId};
use crate::limits::{BAN_KICK_WAIT, INVITE_LIFETIME, MAX_FOUNDED_PER_ACCOUNT};
use crate::moderation::{
    ACCOUNT_REMOVED, ACCOUNT_REMOVED_FOUNDER, Entry, MAX_BANS_PER_ROOM, MAX_INVITED,
    MAX_OPS_PER_ROOM, Mask, ModeChange, Policy, PolicyEdit, RoomClose,
};
use crate::persist::Write;
use crate::render::count;
use crate::time::Millis;
use crate::types::{ConnId, Nick, RoomName, Seq, Text};
use crate::wire::{AdminAction, ErrorKind, EventKind, ModAction, Re, ServerMsg};
use core::net::IpAddr;
use tracing::{debug, info};

/// Server-wide bans the server keeps.
const MAX_SERVER_BANS: usize = 1000;

/// Why someone may not do something in a room: an error kind and its words.
type Refusal = (ErrorKind, String);

/// The words between the nick and the room when an invitation names someone in the room
/// already (IRC answers `443` for them).
pub(crate) const ALREADY_IN: &str = " is already in ";
/// How an `Unban` of a mask the list does not hold begins (`no ban on MASK in #room`): IRC
/// answers it `698 ERR_LISTMODENOTSET`.
pub(crate) const NO_BAN_ON: &str = "no ban on ";
/// How the refusal to make a guest an operator ends (`bob is not signed in: ...`): IRC
/// answers it `696 ERR_INVALIDMODEPARAM <channel> o <nick>`.
pub(crate) const NOT_AN_ACCOUNT: &str = " is not signed in: operators are accounts";
/// How an `Unmute` of a mask the list does not hold goes on (`MASK is not muted in #room`).
pub(crate) const NOT_MUTED_IN: &str = " is not muted in ";

/// A ban whose members leave at its moment `due` ([`Timer::BanKicks`], see
/// [`crate::limits::BAN_KICK_WAIT`]), unless a `KICK` puts them out first.
#[derive(Debug)]
pub(super) struct BanKick {
    due: Millis,
    room: RoomName,
    by: Nick,
    /// The members it held, with the nick each had then: a rename meanwhile does not dodge it.
    held: Vec<(UserId, Nick)>,
    reason: Option<Text>,
}

impl Hub {
    /// Runs an operator's action.
    pub(super) fn moderate(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        action: ModAction,
        now: Millis,
    ) {
        let looking = matches!(action, ModAction::Settings | ModAction::Bans);
        if let Some(detail) = self.cluster_away(&room).filter(|_| !looking) {
            return self.error(conn, ErrorKind::Unavailable, Re::Room(room), detail);
        }
        // A server admin may act in a room it is not in: the room's events do not reach it.
        let outside = !self.member_of(uid, &room);
        let before = self.rooms.get(&room).map(|r| r.last_seq);
        // A kick of its last member would take a memory-only room, and its events, away
        // before they are told: it goes once they are.
        if outside {
            self.told_outside = Some(room.clone());
        }
        let done = self.try_moderate(conn, uid, &room, action, now);
        self.told_outside = None;
        match done {
            Err((kind, detail)) => self.error(conn, kind, Re::Room(room), detail),
            Ok(()) if outside => {
                self.tell_done_outside(conn, &room, before);
                self.drop_if_empty(&room);
            }
            Ok(()) => {}
        }
    }

    /// What an action by someone outside `room` made of it (its events after `before`), in
    /// the words its members read, to the one who did it.
    fn tell_done_outside(&mut self, conn: ConnId, room: &RoomName, before: Option<Seq>) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let after = before.unwrap_or(Seq(0));
        let words: Vec<String> = r
            .last_n_after(usize::MAX, after, r.last_seq)
            .filter_map(|s| s.event())
            .filter_map(|ev| crate::render::event_words(&ev))
            .collect();
        for w in words {
            self.reply(conn, Reply::Note(Note::DoneOutside(w)));
        }
    }

    /// Whether `conn` speaks IRC, whose users sign in with SASL and register a channel with
    /// `MODE #room +r`, not with the typed `/login` and `/register #room`.
    pub(super) fn speaks_irc(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn).and_then(|c| c.dialect()),
            Some(super::dialect::AnyDialect::Irc(_))
        )
    }

    /// How a guest on `conn` signs in, in its door's words.
    fn sign_in_how(&self, conn: ConnId) -> &'static str {
        if self.speaks_irc(conn) {
            "sign in to an account (SASL)"
        } else {
            "sign in (/login, or /register PASSWORD for a new account)"
        }
    }

    /// Why nobody is an operator of a room no account registered, and how to change that
    /// in the words of `conn`'s door: `/register #room` typed, `MODE #room +r` on IRC (as
    /// irssi and WeeChat type it: `/mode #room +r`), after signing in.
    fn unregistered_words(&self, conn: ConnId, room: &RoomName, signed_in: bool) -> String {
        let how = if self.speaks_irc(conn) {
            format!("/mode {room} +r")
        } else {
            format!("/register {room}")
        };
        let sign_in = if signed_in {
            String::new()
        } else {
            format!("{}, then ", self.sign_in_how(conn))
        };
        format!(
            "{room} is not registered, so it has no operators: {sign_in}{how} to become its founder"
        )
    }

    fn try_moderate(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: &RoomName,
        action: ModAction,
        now: Millis,
    ) -> Result<(), Refusal> {
        // A room is registered by a member: `/register #new` says how to get there, as the
        // other actions' refusals need not.
        let join_first = if matches!(action, ModAction::Register) {
            format!(": join it first (/join {room}), then /register {room}")
        } else {
            String::new()
        };
        let Some(r) = self.rooms.get(room) else {
            return Err((ErrorKind::NotInRoom, format!("{NO_ROOM}{room}{join_first}")));
        };
        let account = self.account_of(uid);
        let admin = self.is_admin_user(uid);
        // Anyone may look at a room's settings and bans; acting needs being in it.
        let looking = matches!(action, ModAction::Settings | ModAction::Bans);
        if !admin && !looking && !r.members.contains(&uid) {
            return Err((
                ErrorKind::NotInRoom,
                format!("you are not in {room}{join_first}"),
            ));
        }
        let me = self
            .users
            .get(&uid)
            .map(|u| u.nick.clone())
            .ok_or_else(gone)?;
        let founder = r.policy.as_ref().and_then(|p| p.founder.clone());
        let is_founder = admin
            || founder
                .as_ref()
                .is_some_and(|f| account.as_deref() == Some(f.folded().as_str()));
        let is_op = admin
            || r.policy
                .as_ref()
                .is_some_and(|p| p.is_op(account.as_deref()));
        let invite_only = r.policy.as_ref().is_some_and(|p| p.modes.invite_only);
        let inviting = matches!(action, ModAction::Invite(_));
        // A room nobody registered has no operators at all: its maker, refused a `/kick`, is
        // told how a room gets some rather than that it is not one of them. The lobby belongs
        // to everyone and cannot be registered (but by a server admin). A server admin may
        // make operators of a room nobody registered: then it has some.
        let no_ops = r.policy.as_ref().is_none_or(|p| p.ops.is_empty());
        let unregistered = (founder.is_none() && no_ops && *room != RoomName::lobby())
            .then(|| self.unregistered_words(conn, room, account.is_some()));
        let need_op = || {
            Err((
                ErrorKind::NotOperator,
                unregistered
                    .clone()
                    .unwrap_or_else(|| format!("you are not an operator of {room}")),
            ))
        };
        match action {
            ModAction::Settings => {
                let msg = self.policy_msg(room, is_op);
                self.reply(conn, Reply::Msg(msg));
            }
            ModAction::Bans => {
                let (bans, mutes) = self.rooms.get(room).and_then(|r| r.policy.as_ref()).map_or(
                    (Vec::new(), Vec::new()),
                    |p| {
                        let live = |v: &Vec<Entry>| {
                            v.iter()
                                .filter(|e| e.live(now))
                                .cloned()
                                .collect::<Vec<_>>()
                        };
                        (live(&p.bans), live(&p.mutes))
                    },
                );
                let msg = ServerMsg::BanList {
                    room: room.clone(),
                    bans,
                    mutes,
                };
                self.reply(conn, Reply::Msg(msg));
            }
            ModAction::Register => {
                let Some(account) = account else {
                    return Err((
                        ErrorKind::NotSignedIn,
                        format!(
                            "a room is registered to an account: {} first",
                            self.sign_in_how(conn)
                        ),
                    ));
                };
                if let Some(f) = founder {
                    return Err((
                        ErrorKind::Invalid,
                        format!("{room} is registered to {f} already"),
                    ));
                }
                if *room == RoomName::lobby() && !admin {
                    return Err((ErrorKind::Invalid, format!("{room} belongs to everyone")));
                }
                // A room with operators and no founder (its founder's account was removed, or
                // an admin made them): one of them registers it, not any member passing by
                // (the next to register a removed founder's name among them).
                if !no_ops && !is_op {
                    return Err((
                        ErrorKind::NotOperator,
                        format!(
                            "{room} has operators: one of them (or a server admin) registers it"
                        ),
                    ));
                }
                if !admin && self.founded_by(&account) >= MAX_FOUNDED_PER_ACCOUNT {
                    // `Invalid`, as the other refusals of a registration: `TooManyRooms` is an
                    // IRC client's 405, which irssi shows as a join refused.
                    return Err((
                        ErrorKind::Invalid,
                        format!(
                            "you founded {MAX_FOUNDED_PER_ACCOUNT} rooms, the most one account may; \
                             a server admin can /close one you no longer need"
                        ),
                    ));
                }
                let name = self.account_name(&account).unwrap_or_else(|| me.clone());
                self.policy_mut(room).founder = Some(name.clone());
                self.changed(room, me, "+r".into(), PolicyEdit::Founder(name), now);
            }
            ModAction::Op(_) | ModAction::Deop(_) if !is_founder => {
                return Err((
                    ErrorKind::NotOperator,
                    unregistered
                        .clone()
                        .unwrap_or_else(|| format!("only the founder of {room} makes operators")),
                ));
            }
            ModAction::Op(nick) => {
                let acct = match self.named(&nick) {
                    // An operator of a room is one of its members, as on IRC (`441`).
                    Ok((target, tnick)) if !self.member_of(target, room) => {
                        return Err(not_in(&tnick, room));
                    }
                    Ok((target, _)) => self.account_of(target),
                    // In a cluster every node knows every account: one on another node (or
                    // on none) is named by its account's name.
                    Err(_) if self.cluster.is_some() && self.accounts.registered(&nick) => {
                        Some(nick.folded())
                    }
                    // A guest on another node: not an account, as on a single node.
                    Err(_) if self.remote_presence(&nick).is_some() => None,
                    Err(e) => return Err(e),
                };
                let Some(acct) = acct else {
                    return Err((ErrorKind::Invalid, format!("{nick}{NOT_AN_ACCOUNT}")));
                };
                let name = self.account_name(&acct).unwrap_or(nick.clone());
                let p = self.policy_mut(room);
                if p.ops.iter().any(|o| o.folded() == acct) {
                    self.unchanged(conn, format!("{name} is an operator of {room} already"));
                    return Ok(());
                }
                if p.ops.len() >= MAX_OPS_PER_ROOM {
                    return Err((ErrorKind::Invalid, "too many operators".into()));
                }
                p.ops.push(name.clone());
                let words = format!("+o {name}");
                self.changed(room, me, words, PolicyEdit::Op(name), now);
            }
            ModAction::Deop(nick) => {
                let listed = self
                    .rooms
                    .get(room)
                    .and_then(|r| r.policy.as_ref())
                    .is_some_and(|p| p.ops.iter().any(|o| o.folded() == nick.folded()));
                // An operator away is lifted by name; anyone else must be in the room.
                if !listed {
                    self.in_room(&nick, room)?;
                }
                let p = self.policy_mut(room);
                let before = p.ops.len();
                p.ops.retain(|o| o.folded() != nick.folded());
                if p.ops.len() != before {
                    let words = format!("-o {nick}");
                    self.changed(room, me, words, PolicyEdit::Deop(nick), now);
                } else {
                    self.unchanged(conn, format!("{nick} is not an operator of {room}"));
                }
            }
            // Any member invites to a room that is not invite-only, as on IRC: there the
            // invitation only tells the invited; in an invite-only room it lets in, which
            // is an operator's to give.
            ModAction::Invite(_) if !is_op && invite_only => return need_op(),
            _ if !is_op && !inviting => return need_op(),
            ModAction::Voice(nick) => {
                self.in_room(&nick, room)?;
                let p = self.policy_mut(room);
                if !p.voiced.iter().any(|v| v.folded() == nick.folded()) {
                    if p.voiced.len() >= MAX_OPS_PER_ROOM {
                        return Err((ErrorKind::Invalid, "too many voiced members".into()));
                    }
                    p.voiced.push(nick.clone());
                    let words = format!("+v {nick}");
                    self.changed(room, me, words, PolicyEdit::Voice(nick), now);
                } else {
                    self.unchanged(conn, format!("{nick} is voiced in {room} already"));
                }
            }
            ModAction::Devoice(nick) => {
                let listed = self
                    .rooms
                    .get(room)
                    .and_then(|r| r.policy.as_ref())
                    .is_some_and(|p| p.voiced.iter().any(|v| v.folded() == nick.folded()));
                if !listed {
                    self.in_room(&nick, room)?;
                }
                let p = self.policy_mut(room);
                let before = p.voiced.len();
                p.voiced.retain(|v| v.folded() != nick.folded());
                if p.voiced.len() != before {
                    let words = format!("-v {nick}");
                    self.changed(room, me, words, PolicyEdit::Devoice(nick), now);
                } else {
                    self.unchanged(conn, format!("{nick} is not voiced in {room}"));
                }
            }
            ModAction::Kick { nick, reason } => {
                if let Some(tnick) = self.remote_member(room, &nick) {
                    // On another node: its node puts it out when the kick comes from the log.
                    self.remote_protected(&tnick, room, admin, "put out")?;
                    info!(room = %room, by = %me, target = %tnick, "kick (another node)");
                    self.kick_remote(room, &me, tnick, reason, now);
                    return Ok(());
                }
                let (target, tnick) = self.named(&nick)?;
                if !self.member_of(target, room) {
                    // A kickban (irssi's, WeeChat's, HexChat's) bans first and kicks after:
                    // the ban put the user out already, so the KICK has nothing left to do
                    // (and its reason reaches nobody). The words hold for someone never in
                    // the room too.
                    if self.banned(target, room, now).is_some() {
                        self.unchanged(
                            conn,
                            format!("{tnick} is not in {room}: a ban keeps them out"),
                        );
                        return Ok(());
                    }
                    return Err(not_in(&nick, room));
                }
                self.protected(target, room, admin, "put out")?;
                info!(room = %room, by = %me, target = %tnick, "kick");
                self.kick(room, &me, target, tnick, reason, now);
            }
            ModAction::Ban {
                target,
                duration,
                reason,
            } => {
                let (masks, nick_only) =
                    self.masks_for(&target, (conn, uid), room, admin, "ban")?;
                let until = duration.map(|d| Millis(now.0.saturating_add(d.0)));
                let p = self.policy_mut(room);
                p.expire(now);
                let masks = to_set(&p.bans, masks, duration.is_some());
                if masks.is_empty() {
                    self.unchanged(conn, format!("{target} is banned from {room} already"));
                    return Ok(());
                }
                if p.bans.len() + masks.len() > MAX_BANS_PER_ROOM {
                    return Err((
                        ErrorKind::Invalid,
                        format!("{room} has {MAX_BANS_PER_ROOM} bans, the most a room keeps"),
                    ));
                }
                let entries: Vec<Entry> = masks
                    .iter()
                    .map(|mask| Entry {
                        mask: mask.clone(),
                        until,
                        by: me.clone(),
                        reason: reason.clone(),
                        at: now,
                    })
                    .collect();
                for e in &entries {
                    p.bans.retain(|b| !same_mask(&b.mask, &e.mask));
                    p.bans.push(e.clone());
                }
                for e in entries {
                    let words = format!("+b {}", e.mask);
                    self.changed(room, me.clone(), words, PolicyEdit::Ban(e), now);
                }
                if let Some(words) = nick_only {
                    self.reply(conn, Reply::Note(Note::NickOnly(words)));
                }
                // Whoever the ban holds leaves now.
                let held: Vec<UserId> = self
                    .rooms
                    .get(room)
                    .map(|r| r.members.iter().copied().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| self.banned(*m, room, now).is_some())
                    .collect();
                if held.is_empty() {
                    return Ok(());
                }
                // On IRC a kickban is a ban and then a KICK with the operator's reason: the
                // ban's members leave a moment later, unless that KICK puts them out first.
                if self.kind(conn) == Some(super::ConnKind::Irc) {
                    self.ban_kick_later(room, me, held, reason, now);
                } else {
                    let ban = BanKick {
                        due: now,
                        room: room.clone(),
                        by: me,
                        held: self.with_nicks(held),
                        reason,
                    };
                    self.ban_kick(ban, now);
                }
            }
            ModAction::Unban { target } => {
                let mask = Mask::parse(&target).map_err(|e| (ErrorKind::Invalid, e.to_string()))?;
                let (gone, still) = self.lifting(&mask, room, |p| &p.bans);
                if gone.is_empty() {
                    return Err((ErrorKind::Invalid, format!("{NO_BAN_ON}{mask} in {room}")));
                }
                let p = self.policy_mut(room);
                p.bans.retain(|b| !gone.contains(&b.mask));
                for mask in gone {
                    let words = format!("-b {mask}");
                    self.changed(room, me.clone(), words, PolicyEdit::Unban(mask), now);
                }
                for (addr, nick) in still {
                    let words = self.still_holds(conn, room, &addr, &nick, false);
                    self.reply(conn, Reply::Note(Note::NickOnly(words)));
                }
            }
            ModAction::Mute { target, duration } => {
                let (masks, nick_only) =
                    self.masks_for(&target, (conn, uid), room, admin, "mute")?;
                let until = duration.map(|d| Millis(now.0.saturating_add(d.0)));
                let p = self.policy_mut(room);
                p.expire(now);
                let masks = to_set(&p.mutes, masks, duration.is_some());
                if masks.is_empty() {
                    self.unchanged(conn, format!("{target} is muted in {room} already"));
                    return Ok(());
                }
                if p.mutes.len() + masks.len() > MAX_BANS_PER_ROOM {
                    return Err((
                        ErrorKind::Invalid,
                        format!("{room} has {MAX_BANS_PER_ROOM} mutes, the most a room keeps"),
                    ));
                }
                let entries: Vec<Entry> = masks
                    .into_iter()
                    .map(|mask| Entry {
                        mask,
                        until,
                        by: me.clone(),
                        reason: None,
                        at: now,
                    })
                    .collect();
                for e in &entries {
                    p.mutes.retain(|b| !same_mask(&b.mask, &e.mask));
                    p.mutes.push(e.clone());
                }
                for e in entries {
                    let words = format!("+q {}", e.mask);
                    self.changed(room, me.clone(), words, PolicyEdit::Mute(e), now);
                }
                if let Some(words) = nick_only {
                    self.reply(conn, Reply::Note(Note::NickOnly(words)));
                }
            }
            ModAction::Unmute { target } => {
                let mask = Mask::parse(&target).map_err(|e| (ErrorKind::Invalid, e.to_string()))?;
                let (gone, still) = self.lifting(&mask, room, |p| &p.mutes);
                if gone.is_empty() {
                    return Err((ErrorKind::Invalid, format!("{target}{NOT_MUTED_IN}{room}")));
                }
                let p = self.policy_mut(room);
                p.mutes.retain(|m| !gone.contains(&m.mask));
                for mask in gone {
                    let words = format!("-q {mask}");
                    self.changed(room, me.clone(), words, PolicyEdit::Unmute(mask), now);
                }
                for (addr, nick) in still {
                    let words = self.still_holds(conn, room, &addr, &nick, true);
                    self.reply(conn, Reply::Note(Note::NickOnly(words)));
                }
            }
            ModAction::Invite(nick) => {
                // In a cluster a nick nobody has here may be on another node: its node tells
                // it when the invitation reaches it.
                let (target, tnick) = match self.named(&nick) {
                    Ok((t, n)) => (Some(t), n),
                    Err(_) if self.cluster.is_some() => (None, nick),
                    Err(e) => return Err(e),
                };
                // Nothing to let in (IRC refuses it: ERR_USERONCHANNEL).
                if target.is_some_and(|t| self.member_of(t, room)) {
                    return Err((ErrorKind::Invalid, format!("{tnick}{ALREADY_IN}{room}")));
                }
                let Some(r) = self.rooms.get_mut(room) else {
                    return Err(gone());
                };
                let folded = tnick.folded();
                let invite = Invite {
                    nick: folded,
                    user: target,
                    until: now + INVITE_LIFETIME,
                };
                // Invited again: the new one replaces it (and its time starts again).
                r.invited.retain(|i| match (i.user, invite.user) {
                    (Some(was), Some(now_invited)) => was != now_invited,
                    _ => i.nick != invite.nick,
                });
                self.drop_lapsed_invites(room, now);
                let Some(r) = self.rooms.get_mut(room) else {
                    return Err(gone());
                };
                // The oldest goes if the list is still full.
                if r.invited.len() >= MAX_INVITED {
                    r.invited.remove(0);
                }
                r.invited.push(invite);
                // Who let whom into the room is the audit log's (not a room event: an
                // invitation is between the operator and the invited, as on IRC). A member's
                // invitation to an open room is kept as well (it lets in should the room turn
                // invite-only before the invited come, as IRC servers keep invitations), but
                // it is no operator's act.
                if is_op {
                    self.audit(Some(room), &me, format!("invite {tnick}"), now);
                }
                let invited = tnick.clone();
                let edit = PolicyEdit::Invite {
                    nick: tnick,
                    by: me.clone(),
                };
                self.cluster_room_edit(room, edit);
                let on: Vec<ConnId> = target
                    .map(|t| self.user_conns(t).collect())
                    .unwrap_or_default();
                let signed_in = account.is_some();
                for c in on {
                    let msg = ServerMsg::Invited {
                        room: room.clone(),
                        by: me.clone(),
                    };
                    // As a direct message: IRC's `account-tag` says who sent it.
                    let reply = Reply::Direct {
                        msg,
                        tags: None,
                        signed_in,
                    };
                    self.reply(c, reply);
                }
                // IRCv3 invite-notify: the members who may invite too (the operators of an
                // invite-only room, every member of another) hear of it, but the inviter.
                let p = self.rooms.get(room).and_then(|r| r.policy.as_ref());
                let seers: Vec<ConnId> = self
                    .rooms
                    .get(room)
                    .map(|r| r.members.iter().copied().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| *m != uid)
                    .filter(|m| {
                        !invite_only
                            || self.is_admin_user(*m)
                            || p.is_some_and(|p| p.is_op(self.account_of(*m).as_deref()))
                    })
                    .flat_map(|m| self.user_conns(m).collect::<Vec<_>>())
                    .collect();
                for c in seers {
                    let note = super::dialect::Note::InvitedBy {
                        by: me.clone(),
                        nick: invited.clone(),
                        room: room.clone(),
                        signed_in,
                    };
                    self.reply(c, Reply::Note(note));
                }
                let note = super::dialect::Note::Invited {
                    nick: invited,
                    room: room.clone(),
                };
                self.reply(conn, Reply::Note(note));
            }
            ModAction::Mode(mut change) => {
                // A limit past the largest room the server allows means no more than that.
                let most = u32::try_from(self.config.max_room_members).unwrap_or(u32::MAX);
                if let ModeChange::Limit(Some(n)) = &mut change {
                    *n = (*n).min(most);
                }
                let p = self.policy_mut(room);
                let before = p.modes.clone();
                match &change {
                    ModeChange::InviteOnly(on) => p.modes.invite_only = *on,
                    ModeChange::Key(k) => p.modes.key = k.clone(),
                    ModeChange::Moderated(on) => p.modes.moderated = *on,
                    ModeChange::TopicOps(on) => p.modes.topic_ops = *on,
                    ModeChange::Limit(n) => p.modes.limit = *n,
                }
                let words = change.words();
                // A mode set as it already was is no event (nor an audit line), as on IRC
                // servers: a script or a client setting +t again does not fill the room.
                if p.modes == before {
                    self.unchanged(conn, format!("{words} changes nothing in {room}"));
                    return Ok(());
                }
                let key_set = matches!(change, ModeChange::Key(Some(_)));
                self.changed(room, me.clone(), words, PolicyEdit::Mode(change), now);
                if key_set {
                    self.key_to_members(room, Some(me));
                }
            }
        }
        Ok(())
    }

    /// Runs a server admin's action.
    pub(super) fn administer(
        &mut self,
        conn: ConnId,
        uid: UserId,
        action: AdminAction,
        now: Millis,
    ) {
        // A room's settings change as a moderator's change does (see `Hub::moderate`).
        if let AdminAction::TakeOver(room) | AdminAction::Close { room, .. } = &action
            && let Some(detail) = self.cluster_away(room)
        {
            return self.error(conn, ErrorKind::Unavailable, Re::Room(room.clone()), detail);
        }
        // A room that does not exist is refused as being about that room (IRC: `403`).
        let about = match &action {
            AdminAction::TakeOver(room) | AdminAction::Close { room, .. } => Some(room.clone()),
            _ => None,
        };
        if let Err((kind, detail)) = self.try_administer(conn, uid, action, now) {
            let re = match about {
                Some(room) if kind == ErrorKind::NotInRoom => Re::Room(room),
                _ => Re::Conn,
            };
            self.error(conn, kind, re, detail);
        }
    }

    /// IRC's `WALLOPS` ([`super::dialect::Request::Wallops`]): a server admin's words to the
    /// IRC users with user mode `w`, on this node; an audit line as a `/wall` is.
    pub(super) fn wallops(&mut self, conn: ConnId, text: Text, now: Millis) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        if !self.is_admin_user(uid) {
            let detail = "that is for server admins".to_owned();
            return self.error(conn, ErrorKind::NotOperator, Re::Conn, detail);
        }
        if let Some(detail) = self.cluster_wall_away() {
            return self.error(conn, ErrorKind::Unavailable, Re::Conn, detail);
        }
        let Some(me) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        self.audit(None, &me, format!("wallops {text}"), now);
        self.cluster_wall(&me, &text, true);
        self.wall_here(me, text, true);
    }

    /// A server admin's `/wall` (`ops`: IRC's `WALLOPS`, to the IRC users with user mode `w`)
    /// to this node's users: the admin's own node's, or another node's, told by the cluster
    /// ([`Hub::handle_remote_wall`]).
    pub(super) fn wall_here(&mut self, from: Nick, text: Text, ops: bool) {
        let to: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.user().is_some()
                    && !c.closing()
                    && (!ops || c.kind() == Some(super::ConnKind::Irc))
            })
            .map(|(id, _)| *id)
            .collect();
        for c in to {
            let reply = if ops {
                Reply::Note(super::dialect::Note::Wallops {
                    from: from.clone(),
                    text: text.clone(),
                })
            } else {
                Reply::Msg(ServerMsg::Wall {
                    from: from.clone(),
                    text: text.clone(),
                })
            };
            self.reply(c, reply);
        }
    }

    fn try_administer(
        &mut self,
        conn: ConnId,
        uid: UserId,
        action: AdminAction,
        now: Millis,
    ) -> Result<(), Refusal> {
        let account = self.account_of(uid);
        if !self.is_admin_user(uid) {
            return Err((ErrorKind::NotOperator, "that is for server admins".into()));
        }
        let me = self
            .users
            .get(&uid)
            .map(|u| u.nick.clone())
            .ok_or_else(gone)?;
        match action {
            AdminAction::Kill { nick, reason } => {
                let (target, tnick) = self.named(&nick)?;
                let words = match &reason {
                    Some(r) => format!("kill {tnick}: {r}"),
                    None => format!("kill {tnick}"),
                };
                self.audit(None, &me, words, now);
                self.kill_user(target, me, reason.map(|r| r.to_string()), now);
            }
            AdminAction::Wall(text) => {
                if let Some(detail) = self.cluster_wall_away() {
                    return Err((ErrorKind::Unavailable, detail));
                }
                self.audit(None, &me, format!("wall {text}"), now);
                self.cluster_wall(&me, &text, false);
                self.wall_here(me, text, false);
            }
            AdminAction::Ban {
                target,
                duration,
                reason,
            } => {
                let bad = |e: crate::moderation::MaskError| (ErrorKind::Invalid, e.to_string());
                let masks = match self
                    .nicks
                    .get(&self.users, target.to_ascii_lowercase().as_str())
                {
                    Some(t) if t == uid => {
                        return Err((ErrorKind::Invalid, "not yourself".into()));
                    }
                    Some(t) => self.person_masks(t),
                    None => vec![Mask::parse(&target).map_err(bad)?],
                };
                // A mask that holds the admin setting it (its account, its network): refused,
                // as a room's ban of one's own network is. It kept the admin out at its next
                // sign-in, and only another admin could lift it (no command line does).
                if let Some(mine) = masks.iter().find(|m| self.server_holds(uid, m)) {
                    return Err((
                        ErrorKind::Invalid,
                        format!("not yourself: {mine} holds you"),
                    ));
                }
                let until = duration.map(|d| Millis(now.0.saturating_add(d.0)));
                self.server_bans.retain(|b| b.live(now));
                if self.server_bans.len() + masks.len() > MAX_SERVER_BANS {
                    return Err((
                        ErrorKind::Invalid,
                        format!("the server has {MAX_SERVER_BANS} bans, the most it keeps"),
                    ));
                }
                for mask in &masks {
                    self.server_bans.retain(|b| !same_mask(&b.mask, mask));
                    let ban = Entry {
                        mask: mask.clone(),
                        until,
                        by: me.clone(),
                        reason: reason.clone(),
                        at: now,
                    };
                    let words = audit_words(&format!("server ban {mask}"), &ban);
                    self.server_bans.push(ban.clone());
                    self.cluster_server_ban(mask, Some(ban));
                    self.audit(None, &me, words, now);
                }
                self.record(Write::ServerBans(self.server_bans.clone()));
                let held: Vec<UserId> = self
                    .users
                    .keys()
                    .copied()
                    .filter(|u| *u != uid && self.server_banned(*u, None, now).is_some())
                    .collect();
                let why = match &reason {
                    Some(r) => format!("{}{me}: {r}", super::dialect::QUIT_BANNED),
                    None => format!("{}{me}", super::dialect::QUIT_BANNED),
                };
                for u in held {
                    self.remove_user(u, &why, now);
                }
                // Server bans are no room's event: an nc admin is told what was done (else a
                // ban of someone absent was answered with silence).
                for mask in masks {
                    let note = super::dialect::Note::ServerBan {
                        mask,
                        lifted: false,
                    };
                    self.reply(conn, Reply::Note(note));
                }
            }
            AdminAction::Unban { target } => {
                let mask = Mask::parse(&target).map_err(|e| (ErrorKind::Invalid, e.to_string()))?;
                // As a room's unban: nicks and accounts without regard to case, and a nick
                // lifts the ban on the account of that name (what a ban of a signed-in user
                // by nick became), so `/gunban eve` undoes `/gban eve`.
                let gone = lifted(&mask, self.server_bans.iter().map(|b| &b.mask));
                if gone.is_empty() {
                    return Err((ErrorKind::Invalid, format!("no server ban on {mask}")));
                }
                self.server_bans.retain(|b| !gone.contains(&b.mask));
                for mask in &gone {
                    self.cluster_server_ban(mask, None);
                    self.audit(None, &me, format!("server unban {mask}"), now);
                }
                self.record(Write::ServerBans(self.server_bans.clone()));
                for mask in gone {
                    let note = super::dialect::Note::ServerBan { mask, lifted: true };
                    self.reply(conn, Reply::Note(note));
                }
            }
            AdminAction::TakeOver(room) => {
                if !self.rooms.contains_key(&room) {
                    return Err((ErrorKind::NotInRoom, format!("{NO_ROOM}{room}")));
                }
                // An IRC user given an admin's powers by `OPER` takes the room over for the
                // admin account it named, whether or not it is signed in: an account of its
                // own that is no admin's stays no founder (it would keep the room when the
                // powers go; until this review it was made the founder).
                let account = account
                    .filter(|a| self.is_admin_account(a))
                    .or_else(|| self.accounts.opers.get(&uid).cloned());
                let Some(account) = account else {
                    return Err(gone());
                };
                // Never the user's own nick: a founder is an account.
                let Some(name) = self.account_name(&account) else {
                    return Err(gone());
                };
                // An `OPER`'d user is told whose the room is: not its own.
                let for_other = (self.account_of(uid).as_deref() != Some(account.as_str()))
                    .then(|| name.clone());
                let p = self.policy_mut(&room);
                if p.founder.as_ref().is_some_and(|f| f.folded() == account) {
                    let words = match &for_other {
                        None => format!("you are the founder of {room} already"),
                        Some(f) => format!("{f} is the founder of {room} already"),
                    };
                    self.unchanged(conn, words);
                    return Ok(());
                }
                p.founder = Some(name.clone());
                info!(room = %room, by = %me, "room taken over");
                let words = format!("founder {name}");
                self.changed(&room, me, words, PolicyEdit::Founder(name), now);
                let done = AdminDone::TookOver {
                    room,
                    founder: for_other,
                };
                self.reply(conn, Reply::Note(Note::AdminDone(done)));
            }
            AdminAction::Close { room, reason } => {
                if room == RoomName::lobby() {
                    return Err((ErrorKind::Invalid, format!("{room} cannot be closed")));
                }
                let Some(r) = self.rooms.get_mut(&room) else {
                    return Err((ErrorKind::NotInRoom, format!("{NO_ROOM}{room}")));
                };
                // Unregistered first, so the room goes with its last member; its topic goes
                // with its settings (a room kept for its store's seqs is opened again without
                // it, as it would be in a cluster or without a store; the store forgets it
                // at the close's event, `persist::closes_room`).
                let registered = r.policy.take().is_some();
                r.invited.clear();
                r.set_topic(None, None);
                let members: Vec<UserId> = r.members.iter().copied().collect();
                let words = match &reason {
                    Some(r) => format!("close: {r}"),
                    None => "close".to_owned(),
                };
                self.audit(Some(&room), &me, words.clone(), now);
                if registered {
                    self.record(Write::RoomPolicy {
                        room: room.clone(),
                        policy: None,
                    });
                }
                // Every node's members leave when the close reaches them.
                let close = RoomClose {
                    by: me.clone(),
                    reason: reason.clone(),
                };
                self.cluster_room_edit(&room, PolicyEdit::Close(close));
                // And its topic: other nodes would answer `TOPIC` with it, and a room of
                // that name opened again would take it up.
                self.topic_gone(&room);
                info!(room = %room, by = %me, members = members.len(), "room closed");
                // An always-on member with nothing connected hears of it at its next sign-in.
                let away_words =
                    Self::closed_words(&room, Some(&me), reason.as_ref().map(Text::as_str));
                // One event that every member sees (and history keeps), then each leaves
                // quietly: O(members), not a kick per member to everyone left.
                if let Ok(change) = Text::new(&words) {
                    let kind = EventKind::Mode { change };
                    self.broadcast(&room, me.clone(), kind, now, Skip::None, None);
                }
                let done = AdminDone::Closed {
                    room: room.clone(),
                    members: members.len(),
                };
                let why = reason.as_ref().map(Text::as_str);
                for m in members {
                    self.keep_away_note(m, &room, away_words.clone());
                    self.leave_closed(m, &room, Some(&me), why);
                }
                self.drop_if_empty(&room);
                self.reply(conn, Reply::Note(Note::AdminDone(done)));
            }
            AdminAction::Bans => self.send_server_bans(conn, now),
        }
        Ok(())
    }

    /// An operator's change that changes nothing (an op made op again, a deop of someone who
    /// is not one): IRC servers say nothing and programs need no answer, but an nc operator
    /// who heard nothing could not tell it from a lost command.
    fn unchanged(&mut self, conn: ConnId, words: String) {
        self.reply(conn, Reply::Note(super::dialect::Note::Unchanged(words)));
    }

    /// The live server bans, to `conn`.
    fn send_server_bans(&mut self, conn: ConnId, now: Millis) {
        let bans = self
            .server_bans
            .iter()
            .filter(|b| b.live(now))
            .cloned()
            .collect();
        self.reply(conn, Reply::Msg(ServerMsg::ServerBans { bans }));
    }

    /// The server ban holding `uid` (on any connection's address, or `extra`), if any.
    pub(super) fn server_banned(
        &self,
        uid: UserId,
        extra: Option<IpAddr>,
        now: Millis,
    ) -> Option<Entry> {
        if self.server_bans.is_empty() {
            return None;
        }
        let u = self.users.get(&uid)?;
        let account = self.account_of(uid);
        let mut ips: Vec<Option<IpAddr>> = self
            .user_conns(uid)
            .map(|c| {
                self.conns
                    .get(&c)
                    .map(|c| c.counted_ip().unwrap_or(c.socket_ip))
            })
            .collect();
        ips.push(extra);
        self.server_bans
            .iter()
            .find(|b| {
                b.live(now)
                    && ips
                        .iter()
                        .any(|ip| b.mask.holds(account.as_deref(), &u.nick, *ip))
            })
            .cloned()
    }

    /// Whether a server ban of `mask` would hold `uid`: its account, its nick, or the address
    /// of any of its connections, read as [`Hub::server_banned`] reads them.
    fn server_holds(&self, uid: UserId, mask: &Mask) -> bool {
        let Some(u) = self.users.get(&uid) else {
            return false;
        };
        let account = self.account_of(uid);
        let mut ips = self
            .user_conns(uid)
            .filter_map(|c| self.conns.get(&c))
            .map(|c| Some(c.counted_ip().unwrap_or(c.socket_ip)));
        mask.holds(account.as_deref(), &u.nick, None)
            || ips.any(|ip| mask.holds(account.as_deref(), &u.nick, ip))
    }

    /// Whether a connection from `ip` asking for `nick` is held by a server ban (before it has
    /// a user): its refusal words.
    pub(super) fn server_ban_words(
        &self,
        ip: IpAddr,
        nick: Option<&Nick>,
        now: Millis,
    ) -> Option<String> {
        if self.server_bans.is_empty() {
            return None;
        }
        // A hello without a nick (nc, greeted before it names one) is held by an address
        // only: a stand-in nick `*` is no nick, and building it returned "not banned" for
        // every nc user, past every server ban of its address.
        let holds = |m: &Mask| match nick {
            Some(n) => m.holds(None, n, Some(ip)),
            None => m.holds_addr(ip),
        };
        self.server_bans
            .iter()
            .find(|b| b.live(now) && holds(&b.mask))
            .map(|b| match &b.reason {
                Some(r) => format!("you are banned from this server: {r}"),
                None => "you are banned from this server".to_owned(),
            })
    }

    /// Why `uid` may not rename to `nick`, if a ban on that nick holds it: a server ban, or a
    /// ban in a room `uid` is in. (Bans are checked at hello, sign-in and join; without this a
    /// guest banned by nick came back under another nick and renamed to the banned one.)
    pub(super) fn nick_ban_words(&self, uid: UserId, nick: &Nick, now: Millis) -> Option<String> {
        let nick_ban = |b: &Entry| {
            b.live(now) && matches!(b.mask, Mask::Nick(_)) && b.mask.holds(None, nick, None)
        };
        if self.server_bans.iter().any(nick_ban) {
            return Some(format!("the nick {nick} is banned from this server"));
        }
        let u = self.users.get(&uid)?;
        u.rooms
            .iter()
            .find(|r| {
                self.rooms
                    .get(*r)
                    .and_then(|r| r.policy.as_ref())
                    .is_some_and(|p| p.bans.iter().any(nick_ban))
            })
            .map(|r| format!("the nick {nick} is banned from {r}"))
    }

    /// Every connection of `uid` is told `why` and closed, and the user quits (an always-on
    /// account's too).
    pub(super) fn remove_user(&mut self, uid: UserId, why: &str, now: Millis) {
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            // An `Error` and a `Bye` in the binary protocol, 465 and `ERROR` on IRC, and the
            // reason once on nc (an error and a goodbye there would say it twice).
            let last = Reply::Fatal {
                kind: ErrorKind::Banned,
                detail: why.to_owned(),
            };
            self.reply(c, last);
            self.begin_close(c, Some("removed by an admin".into()));
        }
        let account = self.account_of(uid);
        self.quit_user(uid, Text::new(why).ok(), now);
        if let Some(a) = account {
            self.account_out_of_its_rooms(&a);
        }
    }

    /// An admin's `KILL`: `uid`'s connections hear who and why and close, and its rooms see it
    /// quit with those words (not a server ban: it may come back at once).
    fn kill_user(&mut self, uid: UserId, by: Nick, reason: Option<String>, now: Millis) {
        let why = super::dialect::killed_words(&by, reason.as_deref());
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            let last = Reply::Killed {
                by: by.clone(),
                reason: reason.clone(),
            };
            self.reply(c, last);
            self.begin_close(c, Some("killed by an admin".into()));
        }
        // A reason near the longest text leaves no room for the words around it.
        let said = Text::new(&why).or_else(|_| Text::new(&super::dialect::killed_words(&by, None)));
        let account = self.account_of(uid);
        self.quit_user(uid, said.ok(), now);
        if let Some(a) = account {
            self.account_out_of_its_rooms(&a);
        }
    }

    /// Whether `uid` may come into `room` (with `key`): not banned, invited to a `+i` room, the
    /// right key, room under its `+l`. Operators pass `+i`, `+k` and `+l`; a `was_member`
    /// (in the room by right: [`Hub::join_as_member`]) passes `+i` and `+k`.
    pub(super) fn may_enter(
        &mut self,
        uid: UserId,
        room: &RoomName,
        key: Option<&Text>,
        was_member: bool,
        now: Millis,
    ) -> Result<(), Refusal> {
        let Some(r) = self.rooms.get(room) else {
            return Ok(());
        };
        let Some(p) = r.policy.as_ref() else {
            return Ok(());
        };
        let account = self.account_of(uid);
        if self.is_admin_user(uid) {
            return Ok(());
        }
        if let Some(ban) = self.banned(uid, room, now) {
            let why = ban
                .reason
                .as_ref()
                .map_or(String::new(), |r| format!(": {r}"));
            return Err((
                ErrorKind::Banned,
                format!("you are banned from {room}{why}"),
            ));
        }
        if p.is_op(account.as_deref()) {
            return Ok(());
        }
        let nick = self
            .users
            .get(&uid)
            .map(|u| u.nick.folded())
            .unwrap_or_default();
        let invited = r.invited.iter().any(|i| i.admits(uid, &nick, now));
        if p.modes.invite_only && !invited && !was_member {
            return Err((
                ErrorKind::InviteOnly,
                format!("{room} is invite-only: ask an operator for an invite"),
            ));
        }
        if let Some(k) = &p.modes.key
            && key.is_none_or(|given| given.as_str() != k.as_str())
            && !invited
            && !was_member
        {
            // A key given and wrong is not "needs its key": the joiner gave one.
            let words = match key {
                None => format!("{room} needs its key: /join {room} KEY"),
                Some(_) => format!(
                    "that is not the key of {room}: ask its operators for it (/join {room} KEY)"
                ),
            };
            return Err((ErrorKind::BadKey, words));
        }
        if let Some(limit) = p.modes.limit
            && r.members.len() + self.remote_count(room) >= limit as usize
        {
            return Err((
                ErrorKind::RoomFull,
                format!(
                    "{room} is full ({}, its operators' limit)",
                    count(u64::from(limit), "member")
                ),
            ));
        }
        self.drop_lapsed_invites(room, now);
        if invited && let Some(r) = self.rooms.get_mut(room) {
            r.invited.retain(|i| !i.admits(uid, &nick, now));
            if let Some(name) = self.users.get(&uid).map(|u| u.nick.clone()) {
                self.cluster_room_edit(room, PolicyEdit::Uninvite(name));
            }
        }
        Ok(())
    }

    /// Forgets `room`'s invitations that lapsed: their time ran out, or their user quit. (Done
    /// whenever the list is read or grows, so it holds no dead invitations for long, with no
    /// timer of its own.)
    fn drop_lapsed_invites(&mut self, room: &RoomName, now: Millis) {
        let users = &self.users;
        if let Some(r) = self.rooms.get_mut(room) {
            r.invited
                .retain(|i| now < i.until && i.user.is_none_or(|u| users.get(&u).is_some()));
        }
    }

    /// Why `uid` may not speak in `room`, if it may not.
    pub(super) fn may_speak(
        &self,
        uid: UserId,
        room: &RoomName,
        now: Millis,
    ) -> Result<(), String> {
        let Some(p) = self.rooms.get(room).and_then(|r| r.policy.as_ref()) else {
            return Ok(());
        };
        let account = self.account_of(uid);
        if self.is_admin_user(uid) || p.is_op(account.as_deref()) {
            return Ok(());
        }
        let Some(u) = self.users.get(&uid) else {
            return Ok(());
        };
        let ip = self.user_ip(uid);
        if p.mute_of(account.as_deref(), &u.nick, ip, now).is_some() {
            return Err(format!("you are muted in {room}"));
        }
        // A member a ban holds is put out when its kick comes back from a cluster's log, or
        // when a ban typed on IRC puts it out (`BAN_KICK_WAIT`): it says nothing meanwhile.
        if self.banned(uid, room, now).is_some() || self.held_by_waiting_ban(uid, room, now) {
            return Err(format!("you are banned from {room}"));
        }
        if p.modes.moderated
            && !p.voiced.iter().any(|v| {
                v.folded() == u.nick.folded() || account.as_deref() == Some(v.folded().as_str())
            })
        {
            return Err(format!(
                "{room} is moderated: only operators and voiced members speak"
            ));
        }
        Ok(())
    }

    /// Whether `uid` may set `room`'s topic (`+t`: operators only).
    pub(super) fn may_set_topic(&self, uid: UserId, room: &RoomName) -> bool {
        let Some(p) = self.rooms.get(room).and_then(|r| r.policy.as_ref()) else {
            return true;
        };
        let account = self.account_of(uid);
        !p.modes.topic_ops || p.is_op(account.as_deref()) || self.is_admin_user(uid)
    }

    /// How many rooms the account `folded` is the founder of.
    fn founded_by(&self, folded: &str) -> usize {
        self.rooms
            .values()
            .filter(|r| {
                r.policy
                    .as_ref()
                    .and_then(|p| p.founder.as_ref())
                    .is_some_and(|f| f.folded() == folded)
            })
            .count()
    }

    /// Whether `room` outlives its last member: it is registered, or has settings still (its
    /// founder's account removed, or operators an admin made): its operators, modes and bans
    /// are kept, on every node of a cluster too (one that let the room go would let a banned
    /// member in), until an admin closes it. Settings that keep nothing do not hold it (a
    /// cluster gives a room nobody registered settings for a guest's invitation: kept, a guest
    /// would fill the room table with empty rooms).
    pub(super) fn registered_room(&self, room: &RoomName) -> bool {
        self.rooms
            .get(room)
            .and_then(|r| r.policy.as_deref())
            .is_some_and(|p| p.keeps_anything(self.now))
    }

    /// Settings from the store, at start-up: rooms that have any are made if need be.
    pub(super) fn load_policies(&mut self, policies: Vec<(RoomName, Policy)>) {
        for (room, policy) in policies {
            let r = self
                .rooms
                .entry(room)
                .or_insert_with(super::room::Room::new);
            r.policy = Some(Box::new(policy));
        }
    }

    /// After a restart: a guest's voice whose guest did not come back (no restored session
    /// holds its nick, and no account has that name) is lifted, as its quit lifts it
    /// ([`Self::guest_voice_gone`]): the restart ended it, and the next to take the nick
    /// would speak in a `+m` room for it. Not in a cluster, where another node may hold it.
    pub(super) fn voices_of_guests_gone(&mut self) {
        if self.cluster.is_some() {
            return;
        }
        let mut changed = Vec::new();
        for (name, r) in self.rooms.iter_mut() {
            let Some(p) = r.policy.as_deref_mut() else {
                continue;
            };
            let before = p.voiced.len();
            p.voiced.retain(|v| {
                self.accounts.registered(v)
                    || self
                        .nicks
                        .contains_key(&self.users, v.folded_key().as_str())
            });
            if p.voiced.len() != before {
                changed.push((name.clone(), Some(p.clone())));
            }
        }
        for (room, policy) in changed {
            debug!(room = %room, "voices of guests gone at the restart lifted");
            self.record(Write::RoomPolicy { room, policy });
        }
    }

    /// A line in the audit log (the store's; without a store, the log's).
    pub(super) fn audit(
        &mut self,
        room: Option<&RoomName>,
        actor: &Nick,
        action: String,
        now: Millis,
    ) {
        if room.is_some() {
            self.stats.moderation_room += 1;
        } else {
            self.stats.moderation_server += 1;
        }
        self.record(Write::Audit(crate::persist::AuditRecord {
            at: now,
            room: room.cloned(),
            actor: actor.clone(),
            action,
        }));
    }

    // ---- pieces ----

    fn member_of(&self, uid: UserId, room: &RoomName) -> bool {
        self.users.get(&uid).is_some_and(|u| u.rooms.contains(room))
    }

    /// The user with `nick` now.
    fn named(&self, nick: &Nick) -> Result<(UserId, Nick), Refusal> {
        self.nicks
            .get(&self.users, nick.folded_key().as_str())
            .and_then(|u| self.users.get(&u).map(|x| (u, x.nick.clone())))
            .ok_or_else(|| (ErrorKind::NoSuchNick, format!("nobody is called {nick}")))
    }

    /// The member of `room` called `nick`, here or (in a cluster) on another node; else why
    /// not: nobody has the nick (`NoSuchNick`, IRC's `401`), or whoever has it is not in the
    /// room (`NotInRoom`, IRC's `441`).
    pub(super) fn in_room(&self, nick: &Nick, room: &RoomName) -> Result<Nick, Refusal> {
        match self.named(nick) {
            Ok((target, tnick)) if self.member_of(target, room) => Ok(tnick),
            Ok((_, tnick)) => Err(not_in(&tnick, room)),
            Err(nobody) => {
                if let Some(tnick) = self.remote_member(room, nick) {
                    return Ok(tnick);
                }
                match self.remote_presence(nick).map(|p| p.nick.clone()) {
                    Some(tnick) => Err(not_in(&tnick, room)),
                    None => Err(nobody),
                }
            }
        }
    }

    /// The founder is beyond operators' reach (not an admin's).
    fn protected(
        &self,
        target: UserId,
        room: &RoomName,
        admin: bool,
        what: &str,
    ) -> Result<(), Refusal> {
        let founder = self.founder_folded(room);
        let is_founder = founder.is_some() && self.account_of(target) == founder;
        Self::spare_founder(is_founder, admin, room, what)
    }

    /// The folded account name of `room`'s founder, if it has one.
    fn founder_folded(&self, room: &RoomName) -> Option<String> {
        self.rooms
            .get(room)
            .and_then(|r| r.policy.as_ref())
            .and_then(|p| p.founder.as_ref())
            .map(Nick::folded)
    }

    /// An operator's act on the founder is refused (an admin's is not).
    fn spare_founder(
        is_founder: bool,
        admin: bool,
        room: &RoomName,
        what: &str,
    ) -> Result<(), Refusal> {
        if is_founder && !admin {
            return Err((
                ErrorKind::NotOperator,
                format!("the founder of {room} cannot be {what}"),
            ));
        }
        Ok(())
    }

    /// What an unban or unmute naming `mask` lifts of `room`'s bans or mutes (`list`): the
    /// mask (a nick's also lifts the account of its name) and, while a user has the nick, what
    /// a ban or mute of it set (a guest's address too), so `/unban bob` undoes `/ban bob`,
    /// typed `nick:bob` as well. Then the addresses a lifted nick's entry was set with, the
    /// guest gone since (no nick knows them now): each stays, with that nick, for the
    /// operator to be told. Such an address is the entry right after the nick's, set by the
    /// same operator in the same instant (a person's masks go in together): not any address
    /// set then, as `MODE #r +bb bob carol` sets carol's in that instant too; one from before
    /// entries recorded their time (`at` 0) is nobody's to guess.
    fn lifting(
        &self,
        mask: &Mask,
        room: &RoomName,
        list: impl Fn(&Policy) -> &Vec<Entry>,
    ) -> (Vec<Mask>, Vec<(Mask, Mask)>) {
        let Some(list) = self
            .rooms
            .get(room)
            .and_then(|r| r.policy.as_deref())
            .map(list)
        else {
            return (Vec::new(), Vec::new());
        };
        let mut lift = vec![mask.clone()];
        let present = match mask {
            Mask::Nick(n) => self.nicks.get(&self.users, n.folded_key().as_str()),
            _ => None,
        };
        if let Some(t) = present {
            lift.extend(self.person_masks(t));
        }
        let mut gone: Vec<Mask> = Vec::new();
        for l in &lift {
            for m in lifted(l, list.iter().map(|e| &e.mask)) {
                if !gone.contains(&m) {
                    gone.push(m);
                }
            }
        }
        let still = list
            .windows(2)
            .filter_map(|w| {
                let (nick_entry, next) = (&w[0], &w[1]);
                (matches!(nick_entry.mask, Mask::Nick(_))
                    && gone.contains(&nick_entry.mask)
                    && matches!(next.mask, Mask::Net { .. })
                    && !gone.contains(&next.mask)
                    && nick_entry.at != Millis(0)
                    && next.at == nick_entry.at
                    && next.until == nick_entry.until
                    && next.by.folded() == nick_entry.by.folded())
                .then(|| (next.mask.clone(), nick_entry.mask.clone()))
            })
            .collect();
        (gone, still)
    }

    /// The words telling the operator on `conn` that `addr`, set with `nick`'s ban (or mute),
    /// still holds, and how to lift it. On IRC in the masks its clients are shown
    /// (`*!*@198.51.100.20`, `bob!*@*`) and with `/mode`, which every client sends as typed:
    /// irssi's `/unban` sends only what its ban list holds, so `/unban 198.51.100.20/32` sent
    /// nothing at all.
    fn still_holds(
        &self,
        conn: ConnId,
        room: &RoomName,
        addr: &Mask,
        nick: &Mask,
        mute: bool,
    ) -> String {
        let set = if mute { "muted" } else { "banned" };
        if self.speaks_irc(conn) {
            let (addr, nick) = (irc_shown_mask(addr), irc_shown_mask(nick));
            let letter = if mute { 'q' } else { 'b' };
            format!(
                "{addr}, {set} with {nick}, still holds: /mode {room} -{letter} {addr} lifts it"
            )
        } else {
            let lift = if mute { "/unmute" } else { "/unban" };
            format!("{addr}, {set} with {nick}, still holds: {lift} {addr} lifts it")
        }
    }

    /// The masks a ban or mute of `target` sets: a present member's person (account, or nick
    /// and address), or the mask as typed; `actor` asks on `conn`.
    fn masks_for(
        &self,
        target: &str,
        (conn, actor): (ConnId, UserId),
        room: &RoomName,
        admin: bool,
        what: &str,
    ) -> Result<(Vec<Mask>, Option<String>), Refusal> {
        let bad = |e: crate::moderation::MaskError| (ErrorKind::Invalid, e.to_string());
        let mut note = None;
        let present = match Mask::parse(target).map_err(bad)? {
            Mask::Nick(n) => self
                .nicks
                .get(&self.users, n.folded_key().as_str())
                .map(|u| (u, n)),
            Mask::Account(a) => self
                .nicks
                .get(&self.users, a.folded_key().as_str())
                .filter(|u| self.account_of(*u).as_deref() == Some(a.folded().as_str()))
                .map(|u| (u, a)),
            _ => None,
        };
        // A present user with an admin's powers (signed in to an admin account, or `OPER`).
        let present_admin = present
            .as_ref()
            .filter(|(u, _)| self.is_admin_user(*u))
            .and_then(|(u, _)| self.users.get(u))
            .map(|u| u.nick.clone());
        let masks = match present {
            Some((u, _)) => {
                if u == actor {
                    return Err((ErrorKind::Invalid, "not yourself".into()));
                }
                self.protected(u, room, admin, "banned or muted")?;
                let mut masks = self.person_masks(u);
                note = self.nick_only_words(u, actor, &mut masks, what);
                masks
            }
            None => match Mask::parse(target).map_err(bad)? {
                Mask::Nick(n) => self.remote_masks(n, room, admin)?,
                mask => {
                    self.refuse_exempt_mask(&mask, what)?;
                    vec![mask]
                }
            },
        };
        // No room's ban or mute holds its founder (`banned`, `may_speak`): one naming its
        // account (or its nick, the account's) would be said to the room and listed and hold
        // nobody, as an admin's did until the thirty-seventh session, and an operator's typed
        // as `account:NAME` while the founder was away. An admin takes the room over first.
        // The nick is the founder's only while its account is there to hold it: an account
        // the server's operator removed leaves a guest with the nick, banned as any guest.
        if let Some(f) = self.founder_folded(room) {
            let founders = masks.iter().any(|m| match m {
                Mask::Account(a) => a.folded() == f,
                Mask::Nick(n) => n.folded() == f && self.account_name(&f).is_some(),
                Mask::Net { .. } => false,
            });
            if founders {
                let words = format!("the founder of {room} cannot be banned or muted");
                // IRC clients have no command to take a room over: they send natter's own verb
                // raw (irssi's, WeeChat's and HexChat's `/quote`); until the thirty-ninth
                // session an IRC admin was told no way round.
                let words = match (admin, self.speaks_irc(conn)) {
                    (false, _) => words,
                    (true, false) => format!("{words}: /takeover {room} first"),
                    (true, true) => format!("{words}: /quote TAKEOVER {room} first"),
                };
                return Err((ErrorKind::NotOperator, words));
            }
        }
        // Nor a server admin's: one naming it would be set, said and listed, and hold nobody
        // (an operator's was, the admin staying and speaking).
        let admin_named = present_admin.or_else(|| {
            masks.iter().find_map(|m| match m {
                Mask::Account(a) if self.is_admin_account(&a.folded()) => Some(a.clone()),
                Mask::Nick(n)
                    if self.is_admin_account(&n.folded())
                        && self.account_name(&n.folded()).is_some() =>
                {
                    Some(n.clone())
                }
                _ => None,
            })
        });
        if let Some(name) = admin_named {
            return Err((
                ErrorKind::NotOperator,
                format!("{name} is a server admin: no room's ban or mute holds it"),
            ));
        }
        // A network that holds the one setting it: refused as a ban of its own nick is (it
        // would put the operator out and keep them out).
        if let Some(mine) = masks.iter().find(|m| self.holds(actor, m)) {
            return Err((
                ErrorKind::Invalid,
                format!("not yourself: {mine} holds you"),
            ));
        }
        Ok((masks, note))
    }

    /// Whether `mask` holds `uid` (its account, nick, or any of its connections' addresses).
    fn holds(&self, uid: UserId, mask: &Mask) -> bool {
        let Some(u) = self.users.get(&uid) else {
            return false;
        };
        let account = self.account_of(uid);
        self.addresses(uid)
            .into_iter()
            .any(|ip| mask.holds(account.as_deref(), &u.nick, ip))
    }

    /// The counted address of each of `uid`'s connections (`None` for one exempt from the
    /// per-address limits, which is nobody's address here: PROTOCOL.md), and `None` once more
    /// so that account and nick masks hold one with no connection.
    fn addresses(&self, uid: UserId) -> Vec<Option<IpAddr>> {
        let mut ips: Vec<Option<IpAddr>> = self
            .user_conns(uid)
            .map(|c| self.conns.get(&c).and_then(|c| c.counted_ip()))
            .collect();
        ips.push(None);
        ips
    }

    /// Refuses a typed address mask that takes in loopback while loopback is exempt from the
    /// per-address limits: no ban or mute of it would hold anyone (an exempt address is
    /// nobody's), and until the thirty-second session one was set, said and listed all the
    /// same, so the operator believed the room rid of whoever came from there.
    fn refuse_exempt_mask(&self, mask: &Mask, what: &str) -> Result<(), Refusal> {
        let lo4 = IpAddr::from(core::net::Ipv4Addr::LOCALHOST);
        let lo6 = IpAddr::from(core::net::Ipv6Addr::LOCALHOST);
        if !self.config.exempt_loopback || !(mask.holds_addr(lo4) || mask.holds_addr(lo6)) {
            return Ok(());
        }
        Err((
            ErrorKind::Invalid,
            format!(
                "a {what} of {mask} would hold nobody: loopback is every local user's address \
                 (exempt from the per-address limits), not one person's; {what} the nick"
            ),
        ))
    }

    /// Why a ban or mute of the present guest `target`, set by `actor`, holds its nick only,
    /// when its person's masks (`masks`) take in no address: an address exempt from the
    /// per-address limits (loopback) is every local user's, not one person's (a bridge without
    /// the bridge secret, a proxy that sends no PROXY header, nc on the server's machine); one
    /// the operator is on too (a school's or an office's network) would hold the operator.
    fn nick_only_words(
        &self,
        target: UserId,
        actor: UserId,
        masks: &mut Vec<Mask>,
        what: &str,
    ) -> Option<String> {
        if self.account_of(target).is_some() {
            return None;
        }
        let nick = self.users.get(&target)?.nick.clone();
        if let Some(i) = masks
            .iter()
            .position(|m| matches!(m, Mask::Net { .. }) && self.holds(actor, m))
        {
            let shared = masks.remove(i);
            return Some(format!(
                "the {what} holds {nick}'s nick only: {nick}'s address ({shared}) is yours too"
            ));
        }
        if masks.iter().any(|m| matches!(m, Mask::Net { .. })) {
            return None;
        }
        let ip = self
            .user_conns(target)
            .filter_map(|c| self.conns.get(&c))
            .find(|c| c.counted_ip().is_none())?
            .client_ip();
        Some(format!(
            "the {what} holds {nick}'s nick only: {nick}'s address ({ip}) is exempt from the \
             per-address limits (loopback: every user on the server's machine shares it)"
        ))
    }

    /// Cluster mode: the masks a ban or mute of `nick`, when it is not a user here, sets. A
    /// user on another node known from a log with a registered nick is signed in to that
    /// account (nobody else may use it), so its account is held, as a present member's would
    /// be; a guest there is held by its nick (its node, which knows its address, adds that
    /// when it puts the guest out: `hold_guest_address`).
    fn remote_masks(&self, nick: Nick, room: &RoomName, admin: bool) -> Result<Vec<Mask>, Refusal> {
        let known = self.cluster.is_some() && self.remote_user(&nick).is_some();
        if known && self.accounts.registered(&nick) {
            self.remote_protected(&nick, room, admin, "banned or muted")?;
            let name = self.account_name(&nick.folded()).unwrap_or(nick);
            return Ok(vec![Mask::Account(name)]);
        }
        Ok(vec![Mask::Nick(nick)])
    }

    /// The founder is beyond operators' reach on another node too: a member there with the
    /// founder's account name is the founder (a registered nick is its account's).
    fn remote_protected(
        &self,
        nick: &Nick,
        room: &RoomName,
        admin: bool,
        what: &str,
    ) -> Result<(), Refusal> {
        let is_founder = self
            .founder_folded(room)
            .is_some_and(|f| f == nick.folded());
        Self::spare_founder(is_founder, admin, room, what)
    }

    /// What holds a person: its account if signed in, else its nick and the address it is
    /// counted under (none when exempt from the per-address limits: see
    /// [`Hub::nick_only_words`]).
    pub(super) fn person_masks(&self, uid: UserId) -> Vec<Mask> {
        if let Some(a) = self.account_of(uid).and_then(|a| self.account_name(&a)) {
            return vec![Mask::Account(a)];
        }
        let mut masks = Vec::new();
        if let Some(u) = self.users.get(&uid) {
            masks.push(Mask::Nick(u.nick.clone()));
        }
        if let Some(ip) = self.user_ip(uid) {
            let (prefix, addr) = match super::address_key(ip) {
                IpAddr::V4(v4) => (32, IpAddr::V4(v4)),
                v6 => (64, v6),
            };
            masks.push(Mask::Net { addr, prefix });
        }
        masks
    }

    /// The address a user's first connection counts under (none for exempt ones).
    fn user_ip(&self, uid: UserId) -> Option<IpAddr> {
        self.user_conns(uid)
            .find_map(|c| self.conns.get(&c).and_then(|c| c.counted_ip()))
    }

    /// The live ban that holds `uid` in `room`, if one does (on any of its connections'
    /// addresses). None holds the room's founder or a server admin: a network ban that takes
    /// in the founder's address leaves the founder in (the founder is beyond operators' reach).
    pub(super) fn banned(&self, uid: UserId, room: &RoomName, now: Millis) -> Option<Entry> {
        let nick = &self.users.get(&uid)?.nick;
        self.banned_as(uid, room, nick, now)
    }

    /// The ban of `room` that holds `uid` were its nick `nick` (see [`Hub::banned`]).
    fn banned_as(&self, uid: UserId, room: &RoomName, nick: &Nick, now: Millis) -> Option<Entry> {
        let p = self.rooms.get(room)?.policy.as_ref()?;
        let account = self.account_of(uid);
        let founder = p.founder.as_ref().map(Nick::folded);
        if (founder.is_some() && account == founder) || self.is_admin_user(uid) {
            return None;
        }
        let mut ips: Vec<Option<IpAddr>> = self
            .user_conns(uid)
            .map(|c| self.conns.get(&c).and_then(|c| c.counted_ip()))
            .collect();
        if ips.is_empty() {
            ips.push(None);
        }
        ips.into_iter()
            .find_map(|ip| p.ban_of(account.as_deref(), nick, ip, now))
            .cloned()
    }

    pub(super) fn policy_mut(&mut self, room: &RoomName) -> &mut Policy {
        let r = self
            .rooms
            .entry(room.clone())
            .or_insert_with(super::room::Room::new);
        r.policy.get_or_insert_with(Box::default)
    }

    /// The settings changed by `by` (`change` as IRC writes it, `edit` as a cluster merges
    /// it): a `Mode` event, the settings to every member, and the store (or the cluster).
    pub(super) fn changed(
        &mut self,
        room: &RoomName,
        by: Nick,
        change: String,
        edit: PolicyEdit,
        now: Millis,
    ) {
        let audited = match &edit {
            PolicyEdit::Ban(e) | PolicyEdit::Mute(e) => audit_words(&change, e),
            _ => change.clone(),
        };
        self.audit(Some(room), &by, audited, now);
        if let Ok(change) = Text::new(&change) {
            info!(room = %room, by = %by, change = %change, "moderation");
            self.broadcast(room, by, EventKind::Mode { change }, now, Skip::None, None);
        }
        let policy = self
            .rooms
            .get(room)
            .and_then(|r| r.policy.as_deref())
            .cloned();
        self.record(Write::RoomPolicy {
            room: room.clone(),
            policy,
        });
        self.cluster_room_edit(room, edit);
        self.policy_to_members(room);
    }

    /// A guest voiced by nick keeps its voice when it changes nick from `old` to `nick`, as
    /// on IRC, where modes belong to the person (and IRC clients carry the `+` over to the new
    /// nick when they see the `NICK`); the nick it left, free now, no longer speaks for
    /// whoever takes it next. No event: the nick change says it. Members get the new settings.
    pub(super) fn carry_voice(&mut self, rooms: &[RoomName], old: &Nick, nick: &Nick) {
        if old.folded() == nick.folded() {
            return;
        }
        for room in rooms {
            let Some(p) = self
                .rooms
                .get_mut(room)
                .and_then(|r| r.policy.as_deref_mut())
            else {
                continue;
            };
            let Some(at) = p.voiced.iter().position(|v| v.folded() == old.folded()) else {
                continue;
            };
            if p.voiced.iter().any(|v| v.folded() == nick.folded()) {
                p.voiced.remove(at);
            } else {
                p.voiced[at] = nick.clone();
            }
            let policy = Some(p.clone());
            self.record(Write::RoomPolicy {
                room: room.clone(),
                policy,
            });
            self.cluster_room_edit(room, PolicyEdit::Devoice(old.clone()));
            self.cluster_room_edit(room, PolicyEdit::Voice(nick.clone()));
            self.policy_to_members(room);
        }
    }

    /// A guest voiced by nick leaves `room` (a part, a kick, its quit): its voice goes with it,
    /// as IRC's `+v` does. The nick is free now, and whoever took it next spoke in a `+m` room,
    /// kept across restarts by the store. A signed-in member's voice is its account's, as its
    /// operator status is, and stays. No event: the part or quit says it. Members here get
    /// the new settings.
    pub(super) fn guest_voice_gone(&mut self, room: &RoomName, nick: &Nick) {
        let Some(p) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.policy.as_deref_mut())
        else {
            return;
        };
        let before = p.voiced.len();
        p.voiced.retain(|v| v.folded() != nick.folded());
        if p.voiced.len() == before {
            return;
        }
        let policy = Some(p.clone());
        self.record(Write::RoomPolicy {
            room: room.clone(),
            policy,
        });
        self.cluster_room_edit(room, PolicyEdit::Devoice(nick.clone()));
        self.policy_to_members(room);
    }

    /// The account `name` was removed (`natter-server account remove`, applied at the reload
    /// of the accounts or, in a cluster, on any node): no room keeps it as founder, operator or
    /// voiced, else whoever registers the name next would have them (ergo unregisters the
    /// rooms an account founded). Each room stays, with its topic, modes, bans and history:
    /// its operators keep running it, an admin may `/takeover` it. Bans and mutes naming the
    /// account stay (a newcomer under the name inherits them: the safe side). Members are
    /// told with a `Mode` event from the account's name ([`ACCOUNT_REMOVED`]) if `announce`,
    /// and the new settings; the store gets each room's settings, the cluster the edits.
    ///
    /// In a cluster every node hears of a removal and lifts the same (the second node's edits
    /// change nothing): only one announces, or members would hear it once per node. That is
    /// the node of the account's user (the cluster gives its nick to one node), or the node
    /// where the name is registered anew; with neither, members learn it from the settings.
    /// `registered`: the removed account's registration, carried in the cluster's
    /// `AccountGone` (`None` for rights an earlier account left under a name registered anew).
    pub(super) fn account_rights_gone(
        &mut self,
        name: &Nick,
        registered: Option<Millis>,
        announce: bool,
        now: Millis,
    ) {
        let folded = name.folded();
        let same = |n: &Nick| n.folded() == folded;
        let rooms: Vec<RoomName> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.policy.as_deref().is_some_and(|p| {
                    p.founder.as_ref().is_some_and(same)
                        || p.ops.iter().any(same)
                        || p.voiced.iter().any(same)
                })
            })
            .map(|(room, _)| room.clone())
            .collect();
        for room in rooms {
            let Some(p) = self
                .rooms
                .get_mut(&room)
                .and_then(|r| r.policy.as_deref_mut())
            else {
                continue;
            };
            let founder = p.founder.as_ref().is_some_and(same);
            if founder {
                p.founder = None;
            }
            p.ops.retain(|o| !same(o));
            p.voiced.retain(|v| !same(v));
            let policy = Some(p.clone());
            let change = if founder {
                ACCOUNT_REMOVED_FOUNDER
            } else {
                ACCOUNT_REMOVED
            };
            info!(room = %room, account = %name, founder, "a removed account's rights lifted");
            self.audit(Some(&room), name, change.to_owned(), now);
            self.record(Write::RoomPolicy {
                room: room.clone(),
                policy,
            });
            // Founder, operator and voice in one edit, carrying the registration (a late one
            // is left out for a new holder of the name, all three).
            let gone = PolicyEdit::AccountGone {
                name: name.clone(),
                registered,
            };
            self.cluster_room_edit(&room, gone);
            if announce && let Ok(change) = Text::new(change) {
                let kind = EventKind::Mode { change };
                self.broadcast(&room, name.clone(), kind, now, Skip::None, None);
            }
            self.policy_to_members(&room);
        }
    }

    /// After a restart: a founder or operator that is no account any more (removed with
    /// `natter-server account remove` while the server was down) is lifted, as the reload of
    /// the accounts would have ([`Self::account_rights_gone`]). Not in a cluster, whose rooms
    /// and accounts are the cluster's and come in any order.
    pub(super) fn rights_of_accounts_gone(&mut self, now: Millis) {
        if self.cluster.is_some() {
            return;
        }
        let mut gone: Vec<Nick> = Vec::new();
        for r in self.rooms.values() {
            let Some(p) = r.policy.as_deref() else {
                continue;
            };
            for n in p.founder.iter().chain(&p.ops) {
                if !self.accounts.registered(n) && !gone.iter().any(|g| g.folded() == n.folded()) {
                    gone.push(n.clone());
                }
            }
        }
        for name in gone {
            self.account_rights_gone(&name, None, true, now);
        }
    }

    /// `room`'s members on this node (none if there is no such room), to go through while
    /// changing the hub.
    pub(super) fn members_here(&self, room: &RoomName) -> Vec<UserId> {
        self.rooms
            .get(room)
            .map(|r| r.members.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether `uid` may see `room`'s key: its operators and server admins.
    fn sees_key(&self, uid: UserId, room: &RoomName) -> bool {
        let account = self.account_of(uid);
        self.is_admin_user(uid)
            || self
                .rooms
                .get(room)
                .and_then(|r| r.policy.as_ref())
                .is_some_and(|p| p.is_op(account.as_deref()))
    }

    /// `room`'s settings to each of its members here (the key to operators only).
    pub(super) fn policy_to_members(&mut self, room: &RoomName) {
        let members = self.members_here(room);
        for m in members {
            let op = self.sees_key(m, room);
            let msg = self.policy_msg(room, op);
            let on: Vec<ConnId> = self.user_conns(m).collect();
            for c in on {
                self.reply(c, Reply::Settings(msg.clone()));
            }
        }
    }

    /// `room`'s settings to `conn`, one of `uid`'s (the key if it may see it), when the room
    /// has any: on coming into the room.
    pub(super) fn settings_to(&mut self, conn: ConnId, uid: UserId, room: &RoomName) {
        if self.rooms.get(room).is_none_or(|r| r.policy.is_none()) {
            return;
        }
        let op = self.sees_key(uid, room);
        let msg = self.policy_msg(room, op);
        self.reply(conn, Reply::Settings(msg));
    }

    /// `room` got a key (set by `by`, if known here): each member here is told it as it may
    /// see it ([`super::dialect::Note::KeySet`]; only IRC words it).
    pub(super) fn key_to_members(&mut self, room: &RoomName, by: Option<Nick>) {
        let Some(key) = self
            .rooms
            .get(room)
            .and_then(|r| r.policy.as_ref())
            .and_then(|p| p.modes.key.clone())
        else {
            return;
        };
        let hidden = Text::new("*").expect("`*` is one printable character");
        for m in self.members_here(room) {
            let shown = if self.sees_key(m, room) {
                key.clone()
            } else {
                hidden.clone()
            };
            let on: Vec<ConnId> = self.user_conns(m).collect();
            for c in on {
                let note = super::dialect::Note::KeySet {
                    room: room.clone(),
                    by: by.clone(),
                    key: shown.clone(),
                };
                self.reply(c, Reply::Note(note));
            }
        }
    }

    /// The room's settings as sent to a member (the key for operators only).
    pub(super) fn policy_msg(&self, room: &RoomName, op: bool) -> ServerMsg {
        let p = self
            .rooms
            .get(room)
            .and_then(|r| r.policy.as_deref())
            .cloned()
            .unwrap_or_default();
        let mut modes = p.modes;
        if !op {
            // Members learn that there is a key, not what it is.
            modes.key = modes.key.and_then(|_| Text::new("*").ok());
        }
        ServerMsg::Policy {
            room: room.clone(),
            founder: p.founder,
            ops: p.ops,
            voiced: p.voiced,
            modes: Box::new(modes),
        }
    }

    /// The audit log's line for a kick of `target` from `room` by `by`.
    pub(super) fn audit_kick(
        &mut self,
        room: &RoomName,
        by: &Nick,
        target: &Nick,
        reason: Option<&Text>,
        now: Millis,
    ) {
        let words = match reason {
            Some(r) => format!("kick {target}: {r}"),
            None => format!("kick {target}"),
        };
        self.audit(Some(room), by, words, now);
    }

    /// Puts `target` out of `room`: the event while it is still a member (so it sees it too),
    /// then it leaves on every device (in a cluster, when the event comes back from the log).
    pub(super) fn kick(
        &mut self,
        room: &RoomName,
        by: &Nick,
        target: UserId,
        tnick: Nick,
        reason: Option<Text>,
        now: Millis,
    ) {
        self.audit_kick(room, by, &tnick, reason.as_ref(), now);
        let sent = self.cluster_kick_sent(room, &tnick, now);
        // In a cluster the member leaves, and is noted, when the kick comes back from the log.
        if !sent {
            self.keep_put_out_away(target, room, by, reason.as_ref());
        }
        let kind = EventKind::Kick {
            target: tnick,
            reason,
        };
        self.broadcast(room, by.clone(), kind, now, Skip::None, None);
        if sent {
            return;
        }
        self.leave_kicked(target, room);
        self.drop_if_empty(room);
    }

    /// The members a ban held leave, those still in the room and still held by a ban (a
    /// `KICK` may have put them out, a `-b` let them stay), with the ban's reason or "banned".
    fn ban_kick(&mut self, ban: BanKick, now: Millis) {
        let BanKick {
            room,
            by,
            held,
            reason,
            ..
        } = ban;
        for (m, was) in held {
            let still = self.banned(m, &room, now).is_some()
                || self.banned_as(m, &room, &was, now).is_some();
            if !self.member_of(m, &room) || !still {
                continue;
            }
            let Some(n) = self.users.get(&m).map(|u| u.nick.clone()) else {
                continue;
            };
            // In a cluster, a kick of this node's on its way through the log puts it out.
            if self.kick_on_its_way(&room, &n, now) {
                continue;
            }
            let why = reason.clone().or_else(|| Text::new("banned").ok());
            self.kick(&room, &by, m, n, why, now);
        }
    }

    /// A ban by `by` puts out the members of `room` it holds, `held`, [`BAN_KICK_WAIT`] from
    /// `now` (each ban its own wait: one typed just before another's moment waits its own for
    /// its `KICK`).
    pub(in crate::hub) fn ban_kick_later(
        &mut self,
        room: &RoomName,
        by: Nick,
        held: Vec<UserId>,
        reason: Option<Text>,
        now: Millis,
    ) {
        let ban = BanKick {
            due: now + BAN_KICK_WAIT,
            room: room.clone(),
            by,
            held: self.with_nicks(held),
            reason,
        };
        if self
            .timers
            .at(Timer::BanKicks)
            .is_none_or(|at| at > ban.due)
        {
            self.timers.set(Timer::BanKicks, ban.due);
        }
        self.ban_kicks.push(ban);
    }

    /// `members` with their nicks now.
    fn with_nicks(&self, members: Vec<UserId>) -> Vec<(UserId, Nick)> {
        members
            .into_iter()
            .filter_map(|m| Some((m, self.users.get(&m)?.nick.clone())))
            .collect()
    }

    /// Whether a ban of `room` waits to put out `uid` (see [`Hub::ban_kick_later`]).
    pub(in crate::hub) fn ban_kick_waits(&self, room: &RoomName, uid: UserId) -> bool {
        self.ban_kicks
            .iter()
            .any(|b| b.room == *room && b.held.iter().any(|(m, _)| *m == uid))
    }

    /// Whether a ban waiting to put `uid` out of `room` holds it still under the nick it had
    /// then (it may have renamed since; a `-b` lifts it).
    fn held_by_waiting_ban(&self, uid: UserId, room: &RoomName, now: Millis) -> bool {
        self.ban_kicks.iter().any(|b| {
            b.room == *room
                && b.held
                    .iter()
                    .any(|(m, was)| *m == uid && self.banned_as(uid, room, was, now).is_some())
        })
    }

    /// [`Timer::BanKicks`]: the bans whose moment came put out whom they hold; the timer is
    /// armed again for the next.
    pub(super) fn ban_kicks_due(&mut self, now: Millis) {
        let (due, later): (Vec<BanKick>, Vec<BanKick>) = core::mem::take(&mut self.ban_kicks)
            .into_iter()
            .partition(|b| b.due <= now);
        self.ban_kicks = later;
        if let Some(next) = self.ban_kicks.iter().map(|b| b.due).min() {
            self.timers.set(Timer::BanKicks, next);
        }
        for ban in due {
            self.ban_kick(ban, now);
        }
    }

    /// An always-on account with nothing connected, put out of `room` by `by`, hears of it
    /// when it signs in again ([`Hub::tell_put_out_away`]): on the node it is a member on,
    /// wherever the kick was typed.
    pub(super) fn keep_put_out_away(
        &mut self,
        uid: UserId,
        room: &RoomName,
        by: &Nick,
        reason: Option<&Text>,
    ) {
        let why = reason.map_or(String::new(), |r| format!(" ({r})"));
        let words = format!("while you were away, {by} put you out of {room}{why}");
        self.keep_away_note(uid, room, words);
    }

    /// `uid` leaves `room` for a reason its client should hear (`words`): kept for its next
    /// sign-in ([`Hub::tell_put_out_away`]) when it is an account with nothing connected, no
    /// device at all or only devices waiting for a resume. Such a device that resumes hears
    /// the room's own event instead (`Hub::replay_until_out`), and the words go; one that
    /// never resumes left nothing else to say it (until the thirty-ninth session, an account
    /// with a device waiting was told nothing at its next sign-in). Written to the store
    /// ([`Hub::write_away_notes`]), so a restart keeps them.
    pub(super) fn keep_away_note(&mut self, uid: UserId, room: &RoomName, words: String) {
        if self.user_conns(uid).next().is_some() {
            return;
        }
        let Some(u) = self.users.get_mut(&uid).filter(|u| u.account().is_some()) else {
            return;
        };
        let kept = &mut u.extra_mut().put_out_away;
        kept.retain(|(r, _)| r != room);
        if kept.len() >= crate::limits::MAX_ROOMS_PER_USER {
            kept.remove(0);
        }
        kept.push((room.clone(), words));
        self.write_away_notes(uid);
    }

    /// The words kept for an always-on member of `room` with nothing connected when `by`
    /// closes it (`reason`): it comes back to find the room gone, and nothing else says why.
    pub(super) fn closed_words(room: &RoomName, by: Option<&Nick>, reason: Option<&str>) -> String {
        let why = reason.map_or(String::new(), |r| format!(" ({r})"));
        match by {
            Some(by) => format!("while you were away, {by} closed {room}{why}"),
            None => format!("while you were away, {room} was closed{why}"),
        }
    }
}

/// Which of `masks` a ban or mute sets, `list` being the room's bans or mutes (the expired
/// ones gone): those the list does not hold, and, when it is `timed` (natter's own command with
/// a duration), those it holds, to give them the new expiry. One set again as it is is no
/// change, as on IRC servers: a `+b` again would else tell the room twice and make a timed ban
/// one until lifted.
fn to_set(list: &[Entry], masks: Vec<Mask>, timed: bool) -> Vec<Mask> {
    masks
        .into_iter()
        .filter(|m| timed || !list.iter().any(|e| same_mask(&e.mask, m)))
        .collect()
}

/// Whether two masks hold the same people: equal, nicks and accounts without regard to case.
fn same_mask(a: &Mask, b: &Mask) -> bool {
    match (a, b) {
        (Mask::Nick(a), Mask::Nick(b)) | (Mask::Account(a), Mask::Account(b)) => {
            a.folded() == b.folded()
        }
        (a, b) => a == b,
    }
}

/// Whether an unban or unmute naming `lift` lifts the held `mask`: the same mask (a nick or
/// an account without regard to case), or, for a nick, the account of that name, which a ban
/// of the nick set on a signed-in user (a registered nick is its account's name, so the two
/// name one person and nobody else).
/// The masks of `bans` that an unban of `lift` takes away (see [`lifts`]).
fn lifted<'a>(lift: &Mask, bans: impl Iterator<Item = &'a Mask>) -> Vec<Mask> {
    bans.filter(|m| lifts(lift, m)).cloned().collect()
}

fn lifts(lift: &Mask, mask: &Mask) -> bool {
    match (lift, mask) {
        (Mask::Nick(n), Mask::Account(m)) => n.folded() == m.folded(),
        (lift, mask) => same_mask(lift, mask),
    }
}

/// A ban's or mute's audit line: the change as the room reads it, and when it runs out and
/// why, which the room's event leaves to the ban list (`+b nick:eve until 2026-12-06T02:07:38Z:
/// spam`).
fn audit_words(change: &str, e: &Entry) -> String {
    let mut s = change.to_owned();
    if let Some(u) = e.until {
        s.push_str(&format!(" until {}", u.rfc3339()));
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!(": {r}"));
    }
    s
}

/// `nick` is not in `room` (the words IRC's `441` reads the nick from).
fn not_in(nick: &Nick, room: &RoomName) -> Refusal {
    (ErrorKind::NotInRoom, format!("{nick} is not in {room}"))
}

fn gone() -> Refusal {
    (ErrorKind::Invalid, "that is gone".into())
}
