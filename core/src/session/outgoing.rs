//! What the session sends, in order and at the server's pace: message ids and the messages
//! kept until the server acknowledges them (resent after a reconnect), commands typed before
//! the welcome, and the flood pacing that keeps all of it within the limits the server announced.

use crate::flood::Bucket;
use crate::limits::{
    FLOOD_BURST, FLOOD_REFILL, MAX_ANNOUNCED_BURST, MAX_ANNOUNCED_REFILL, MAX_DEFERRED,
    MAX_PACED_COMMANDS, SESSION_MAX_PENDING,
};
use crate::time::Millis;
use crate::types::MsgId;
use crate::wire::{ClientMsg, Limits};
use std::collections::VecDeque;

/// The client's copy of the hub's flood control: what the session sends never has to wait in
/// the server's flood queue, let alone be refused, even when hundreds of messages are resent
/// after a reconnect or piped in at once. A refill of zero turns pacing off.
#[derive(Debug, Clone)]
pub(super) struct Pacing {
    burst: u32,
    refill: Millis,
    bucket: Bucket,
}

impl Pacing {
    pub(super) fn new(burst: u32, refill: Millis, now: Millis) -> Pacing {
        let burst = burst.max(1);
        Pacing {
            burst,
            refill,
            bucket: Bucket::new(burst, now),
        }
    }

    /// The pacing a server's announced limits ask for, within what the session believes: a
    /// server that announces absurd pacing cannot stall the session for more than a few seconds
    /// per line, nor make it send in one huge burst.
    pub(super) fn announced(limits: &Limits, now: Millis) -> Pacing {
        Pacing::new(
            limits.flood_burst.clamp(1, MAX_ANNOUNCED_BURST),
            limits.flood_refill.min(MAX_ANNOUNCED_REFILL),
            now,
        )
    }

    fn same_rates(&self, other: &Pacing) -> bool {
        self.burst == other.burst && self.refill == other.refill
    }

    fn take(&mut self, now: Millis) -> bool {
        self.bucket.take(self.burst, self.refill, now)
    }

    fn next_token_at(&self) -> Millis {
        self.bucket.next_token_at(self.refill)
    }
}

/// Something waiting for a flood token, in the order it is to be sent.
#[derive(Debug, Clone)]
enum Out {
    /// A command.
    Cmd(ClientMsg),
    /// The pending message with this id (skipped if settled meanwhile).
    Msg(MsgId),
}

/// A message with an id, kept until the server acknowledges it (echo, `Ack`, or an error naming
/// it) and resent after a reconnect.
#[derive(Debug, Clone)]
struct Pending {
    id: MsgId,
    msg: ClientMsg,
    /// Sent at least once: a server that could not resume the session may have taken it.
    sent: bool,
}

/// Which queue was full when a message or command was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// [`SESSION_MAX_PENDING`] messages already wait for acknowledgement.
    Pending,
    /// [`MAX_PACED_COMMANDS`] commands already wait for flood tokens.
    Paced,
    /// [`MAX_DEFERRED`] commands already wait for the welcome.
    Deferred,
}

/// The session's outgoing side. See the module docs.
#[derive(Debug)]
pub(super) struct Outgoing {
    /// The last id handed out; ids strictly increase for the life of the session.
    last_id: u64,
    pending: VecDeque<Pending>,
    /// Commands (not joins, parts or messages, which are tracked elsewhere) typed before the
    /// welcome, sent after it.
    deferred: VecDeque<ClientMsg>,
    /// Waiting for flood tokens (only while welcomed).
    outbox: VecDeque<Out>,
    pacing: Pacing,
    /// When the next flood token is there for the outbox, if anything waits.
    flood_at: Option<Millis>,
}

impl Outgoing {
    /// Paces by the hub's default limits until a welcome announces the server's.
    pub(super) fn new(now: Millis) -> Outgoing {
        Outgoing {
            last_id: 0,
            pending: VecDeque::new(),
            deferred: VecDeque::new(),
            outbox: VecDeque::new(),
            pacing: Pacing::new(FLOOD_BURST, FLOOD_REFILL, now),
            flood_at: None,
        }
    }

    /// The id of the last message numbered (`MsgId(0)` before the first).
    pub(super) fn last_numbered(&self) -> MsgId {
        MsgId(self.last_id)
    }

    /// Numbers the messages to come after `last`: a session taking over another's (a reloaded
    /// page's), whose ids the server has seen up to there.
    pub(super) fn number_after(&mut self, last: MsgId) {
        self.last_id = self.last_id.max(last.0);
    }

    /// Gives `make`'s message the next id and keeps it until settled. Returns its id.
    pub(super) fn add_message(
        &mut self,
        make: impl FnOnce(MsgId) -> ClientMsg,
    ) -> Result<(MsgId, &ClientMsg), Full> {
        if self.pending.len() >= SESSION_MAX_PENDING {
            return Err(Full::Pending);
        }
        self.last_id += 1;
        let id = MsgId(self.last_id);
        self.pending.push_back(Pending {
            id,
            msg: make(id),
            sent: false,
        });
        let msg = &self
            .pending
            .back()
            .expect("a message was pushed just above")
            .msg;
        Ok((id, msg))
    }

    /// Forgets pending message `id` (acknowledged, or refused: not to be resent either). False if
    /// it was not pending.
    pub(super) fn settle(&mut self, id: MsgId) -> bool {
        let Some(i) = self.pending.iter().position(|p| p.id == id) else {
            return false;
        };
        self.pending.remove(i);
        // Not yet (re)sent: no need to any more.
        self.outbox
            .retain(|o| !matches!(o, Out::Msg(m) if *m == id));
        true
    }

    /// The ids of the pending messages `which` picks, oldest first.
    pub(super) fn pending_where(&self, which: impl Fn(&ClientMsg) -> bool) -> Vec<MsgId> {
        self.pending
            .iter()
            .filter(|p| which(&p.msg))
            .map(|p| p.id)
            .collect()
    }

    /// Whether pending message `id` is the one `is` recognises (its room or peer and text): an
    /// echo with our nick and this id may be another device's of the same account, whose ids
    /// are its own.
    pub(super) fn pending_is(&self, id: MsgId, is: impl Fn(&ClientMsg) -> bool) -> bool {
        self.pending.iter().any(|p| p.id == id && is(&p.msg))
    }

    /// Drops every pending message (the session ended); returns their ids, oldest first.
    pub(super) fn abandon(&mut self) -> Vec<MsgId> {
        self.outbox.clear();
        self.flood_at = None;
        self.deferred.clear();
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|p| p.id)
            .collect()
    }

    /// A command kept for after the welcome is one `which` accepts.
    pub(super) fn defers(&self, which: impl Fn(&ClientMsg) -> bool) -> bool {
        self.deferred.iter().any(which)
    }

    /// Keeps a command for after the welcome.
    pub(super) fn defer(&mut self, msg: ClientMsg) -> Result<(), Full> {
        if self.deferred.len() >= MAX_DEFERRED {
            return Err(Full::Deferred);
        }
        self.deferred.push_back(msg);
        Ok(())
    }

    /// Adopts the pacing a welcome announced. The server's bucket for this connection starts
    /// full, and so does ours.
    pub(super) fn welcomed(&mut self, limits: &Limits, now: Millis) {
        let announced = Pacing::announced(limits, now);
        if !announced.same_rates(&self.pacing) {
            tracing::debug!(?limits, "pacing by the server's announced limits");
        }
        self.pacing = announced;
    }

    /// Sets the pacing outright (see [`super::Session::set_flood_limits`]).
    pub(super) fn set_pacing(&mut self, burst: u32, refill: Millis, now: Millis) {
        self.pacing = Pacing::new(burst, refill, now);
        if !self.outbox.is_empty() {
            self.flood_at = Some(now);
        }
    }

    /// A transport opened: its server-side bucket is full, and nothing paced for the last one
    /// is still waiting.
    pub(super) fn link_opened(&mut self, now: Millis) {
        self.pacing = Pacing::new(self.pacing.burst, self.pacing.refill, now);
        self.outbox.clear();
        self.flood_at = None;
    }

    /// After the welcome: the commands deferred meanwhile, then (with `messages`) every pending
    /// message again (the server acknowledges ones it already had), all paced. Returns what may
    /// go out at once.
    pub(super) fn resume(&mut self, messages: bool, now: Millis) -> Vec<ClientMsg> {
        let deferred: Vec<Out> = self.deferred.drain(..).map(Out::Cmd).collect();
        let resend: Vec<Out> = if messages {
            self.pending.iter().map(|p| Out::Msg(p.id)).collect()
        } else {
            Vec::new()
        };
        let mut now_out = Vec::new();
        for out in deferred.into_iter().chain(resend) {
            if let Ok(Some(msg)) = self.pace_out(out, now) {
                now_out.push(msg);
            }
        }
        now_out
    }

    /// Sends pending message `id` when a flood token allows, keeping order with what already
    /// waits: `Some(msg)` to send now.
    pub(super) fn pace_message(&mut self, id: MsgId, now: Millis) -> Option<ClientMsg> {
        // A message is never refused here: the pending bound already applies.
        self.pace_out(Out::Msg(id), now).ok().flatten()
    }

    /// Sends a command when a flood token allows, keeping order: `Some(msg)` to send now.
    pub(super) fn pace_command(
        &mut self,
        msg: ClientMsg,
        now: Millis,
    ) -> Result<Option<ClientMsg>, Full> {
        self.pace_out(Out::Cmd(msg), now)
    }

    fn pace_out(&mut self, out: Out, now: Millis) -> Result<Option<ClientMsg>, Full> {
        if self.outbox.is_empty() && self.pacing.take(now) {
            return Ok(self.resolve(out));
        }
        if let Out::Cmd(_) = out {
            let commands = self
                .outbox
                .iter()
                .filter(|o| matches!(o, Out::Cmd(_)))
                .count();
            if commands >= MAX_PACED_COMMANDS {
                return Err(Full::Paced);
            }
        }
        self.outbox.push_back(out);
        self.flood_at = Some(self.pacing.next_token_at());
        Ok(None)
    }

    /// Something went out unpaced that the server meters (a keepalive ping): it takes a token
    /// if one is there, so the pacing keeps matching the server's bucket.
    pub(super) fn charge(&mut self, now: Millis) {
        // With none there, the server queues the ping behind what already waits: nothing to
        // undo here, the next token comes as planned.
        let _took = self.pacing.take(now);
    }

    /// The next waiting message whose token is there at `now`, if any. Call until `None`.
    pub(super) fn next_due(&mut self, now: Millis) -> Option<ClientMsg> {
        loop {
            if self.outbox.is_empty() {
                self.flood_at = None;
                return None;
            }
            if !self.pacing.take(now) {
                self.flood_at = Some(self.pacing.next_token_at());
                return None;
            }
            let out = self.outbox.pop_front()?;
            if let Some(msg) = self.resolve(out) {
                return Some(msg);
            }
        }
    }

    fn resolve(&mut self, out: Out) -> Option<ClientMsg> {
        match out {
            Out::Cmd(msg) => Some(msg),
            Out::Msg(id) => self.pending.iter_mut().find(|p| p.id == id).map(|p| {
                p.sent = true;
                p.msg.clone()
            }),
        }
    }

    /// The pending messages sent at least once, oldest first: after a welcome that did not
    /// resume, nobody can tell whether the server had taken them (see [`Pending::sent`]).
    pub(super) fn sent_pending(&self) -> Vec<MsgId> {
        self.pending
            .iter()
            .filter(|p| p.sent)
            .map(|p| p.id)
            .collect()
    }

    /// The link is gone: messages stay pending (all go again after the welcome); the commands
    /// `keep` accepts that were not sent yet go back to waiting for it (joins and parts are
    /// tracked by the rooms and asked again anyway).
    pub(super) fn link_lost(&mut self, keep: impl Fn(&ClientMsg) -> bool) {
        self.flood_at = None;
        for out in std::mem::take(&mut self.outbox) {
            if let Out::Cmd(msg) = out
                && keep(&msg)
                && self.deferred.len() < MAX_DEFERRED
            {
                self.deferred.push_back(msg);
            }
        }
    }

    /// When [`Outgoing::next_due`] has something, if anything waits.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.flood_at
    }

    /// Nothing waits to be sent or acknowledged.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.deferred.is_empty() && self.outbox.is_empty()
    }

    pub(super) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Whether a message and a command can both still be kept: fewer than
    /// [`SESSION_MAX_PENDING`] messages wait to be acknowledged and fewer than [`MAX_DEFERRED`]
    /// commands wait for the welcome.
    pub(super) fn has_room(&self) -> bool {
        self.pending.len() < SESSION_MAX_PENDING && self.deferred.len() < MAX_DEFERRED
    }

    #[cfg(test)]
    pub(super) fn is_pacing(&self) -> bool {
        !self.outbox.is_empty()
    }

    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.outbox.len()
    }

    #[cfg(test)]
    pub(super) fn last_id(&self) -> u64 {
        self.last_id
    }

    #[cfg(test)]
    pub(super) fn rates(&self) -> (u32, Millis) {
        (self.pacing.burst, self.pacing.refill)
    }
}
