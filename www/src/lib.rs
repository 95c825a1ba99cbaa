//! natter-web: core's client for the browser page, through wasm-bindgen: the
//! [`Session`] (the protocol) and the [`Chat`] model (what the page shows), together.
//!
//! The page owns the WebSocket, one timer and the DOM; this crate owns nothing but core's
//! machines: [`Client`] turns JS numbers into [`Millis`], byte arrays into payloads, typed lines
//! into input for the open conversation, and the model into plain JS objects the page renders
//! (see [`ChangeView`], [`LineView`], [`ConvView`]). The page keeps no chat state of its own.
//!
//! Driving it from JS:
//! 1. drain `poll_action()` until `undefined`: `"connect"` means open a WebSocket now, `"close"`
//!    close it (after sending what was polled);
//! 2. drain `poll_transmit()` and send each `Uint8Array` as one binary WebSocket message;
//! 3. drain `poll_change()` and update the DOM for each change; `poll_alert()` for
//!    notifications;
//! 4. arm one timer for `poll_timeout()` (a time on the page's monotonic clock, see below) that
//!    calls `handle_timeout`;
//! 5. after any input (`handle_*`, `open`, `set_attention`, `load_older`, `search`,
//!    `sign_in`, `register`, `sign_out`), go to 1.
//!
//! Clocks: every `now` is the page's monotonic clock (`performance.timeOrigin +
//! performance.now()`: milliseconds like `Date.now()`'s, which a wall-clock step never moves),
//! so keepalives and reconnects keep their schedule when the computer's clock is set back or
//! forward. The wall clock (`Date.now()`) goes in separately with `set_wall_clock`, read with
//! each turn: the lines the model makes here are stamped with it, as the server's lines are.
//!
//! Accounts: `sign_in(account, password, remember)` or `sign_in_with_key(account, key)` (a key
//! kept from an earlier remembered sign-in), `register(password, remember)` (the nick asked
//! for), `sign_out()`; a guest's page signs in where it stands with `sign_in_here`,
//! `register_here` (after `rename_here` for another nick), its rooms kept, `account_pending()`
//! true until the answer and `take_refusal()` saying why it was refused. `account()` is who we are signed in as; `device_key()` is the key to keep
//! (hex) while the session holds one: the page mirrors it in `localStorage`, never the
//! password. A signed-in model's counts come from the account's read markers, and what the page
//! shows goes back to the server from here (`Read`), debounced by the model.
//!
//! Moderation: `policy(room)` is a room's settings and whether we may moderate it (a `policy`
//! change says they changed), `role(room, nick)` a member's standing for its mark (and
//! `away(room, nick)` their away message, a `memberAway` change when it changes), and
//! `moderate(room, action, target, arg)` an operator's action (kick, ban, mute, op, a mode...).
#![warn(missing_docs)]

use natter_core::Millis;
use natter_core::chat::{
    Change, Chat, Conv, ConvId, Hit, Line, LineKind, Outgoing, Role, Scrollback, Search,
    SearchState, Typed, mention_spans,
};
use natter_core::command;
use natter_core::limits::MAX_ROOMS_PER_USER;
use natter_core::limits::SCROLLBACK_PAGE;
use natter_core::moderation::Entry;
use natter_core::render;
use natter_core::session::{About, ConnState, Event, Resumable, Session, SessionConfig, Transport};
use natter_core::types::DeviceLabel;
use natter_core::types::{DeviceKey, MsgId, Nick, Password, ResumeToken, RoomName, Seq, Text};
use natter_core::wire::{ErrorKind, ModAction, Proof, RememberedDevice};
use serde::Serialize;
use std::collections::VecDeque;
use wasm_bindgen::prelude::*;

/// A time from the page (its monotonic clock, or `Date.now()`) as core's time. Negative, NaN or
/// huge values (a confused clock) saturate instead of failing: `as` from `f64` to `u64` clamps and maps NaN to 0.
fn millis(now: f64) -> Millis {
    Millis(now as u64)
}

/// Core's numbers as JS numbers. Exact below 2^53, which seqs, ids and Unix milliseconds stay
/// under; a hostile server sending more gets rounded numbers, not an exception.
fn num(n: u64) -> f64 {
    n as f64
}

/// A plain JS object from a serialisable view.
fn js<T: Serialize>(value: &T) -> JsValue {
    match value.serialize(&serde_wasm_bindgen::Serializer::new()) {
        Ok(v) => v,
        // Cannot happen for these plain structs; if it did, the page should hear about it
        // rather than lose the value silently.
        Err(e) => JsValue::from_str(&format!("natter-web: not convertible: {e}")),
    }
}

/// What the driver (the page) must do with its WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Connect,
    Close,
}

/// The browser's chat client: core's [`Session`] over a message transport (the page's WebSocket
/// to natter-bridge: it sends one bare frame payload per binary message and receives batches of
/// whole length-prefixed frames; see PROTOCOL.md), and the [`Chat`] model its events feed.
#[wasm_bindgen]
pub struct Client {
    session: Session,
    chat: Chat,
    actions: VecDeque<Action>,
    /// The latest time passed in, for calls that pass none (`open`, `set_attention`).
    now: Millis,
    /// The session held a device key when the last events were drained.
    held_key: bool,
    /// The server refused the device key the session held (see `key_refused`).
    key_refused: bool,
    /// The devices panel asked for the list (`list_devices`): the answer goes to the panel,
    /// not to the conversation as lines.
    devices_asked: bool,
    /// The account's remembered devices as last listed for the panel (`devices_view`).
    devices: Option<Vec<RememberedDevice>>,
    /// The list changed and the page has not been told (a `devices` change).
    devices_changed: bool,
    /// Why the last account request or rename was refused, worded for the sign-in dialog
    /// ([`dialog_refusal`]), until the page takes it (`take_refusal`).
    refusal: Option<String>,
    /// The nick a registration whose answer a drop lost was being checked for when the last
    /// events were taken (core's `checking_registration`): an account refusal among the next
    /// is that check's, worded as such ([`dialog_refusal`]).
    checking: Option<Nick>,
    /// The last account refusal: core's words, and the dialog's for them. An end with core's
    /// very words is that refusal's (`fatal_in_dialog`); any other end is said as core says it.
    last_refusal: Option<(String, String)>,
}

#[wasm_bindgen]
impl Client {
    /// A client for `nick` that will join `#lobby`. `seed` is any number (the page passes a random
    /// one; it only spreads reconnect attempts), `now` is the page's monotonic clock. Throws the reason, in
    /// words, when the nick is not valid.
    #[wasm_bindgen(constructor)]
    pub fn new(nick: &str, seed: f64, now: f64) -> Result<Client, JsError> {
        let nick = Nick::new(nick.trim()).map_err(|e| JsError::new(&e.to_string()))?;
        let config = SessionConfig {
            nick: nick.clone(),
            rooms: vec![RoomName::lobby()],
            transport: Transport::Messages,
            seed: seed as u64,
        };
        Ok(Client::driving(
            Session::new(config, millis(now)),
            nick,
            now,
        ))
    }

    /// A client that resumes a guest's session the page kept for its tab before a reload (the
    /// fields of what `resumable` gave: `nick`, `token`, `rooms`, `seqs`, `keys` (empty for a
    /// session kept without them), `lastId` (0 for one kept without it)): the same nick, its
    /// rooms, and exactly the events it did not see, if the server still holds it; past the
    /// server's resume window, a fresh session as that nick in those rooms, which says so.
    /// Throws why, in words, when they are not such a session (damaged, or not ours).
    #[expect(
        clippy::too_many_arguments,
        reason = "plain arguments from JS: a struct would cost the page a deserialiser"
    )]
    pub fn resumed(
        nick: String,
        token: String,
        rooms: Vec<String>,
        seqs: Vec<f64>,
        keys: Vec<String>,
        last_id: f64,
        seed: f64,
        now: f64,
    ) -> Result<Client, JsError> {
        let kept = KeptSession {
            nick,
            token,
            rooms,
            seqs,
            keys,
            last_id,
        };
        let from = kept.resumable().map_err(|e| JsError::new(&e))?;
        let nick = from.nick.clone();
        let config = SessionConfig {
            nick: nick.clone(),
            rooms: Vec::new(),
            transport: Transport::Messages,
            seed: seed as u64,
        };
        let session = Session::resume(config, from, millis(now));
        Ok(Client::driving(session, nick, now))
    }

    /// What the page keeps for its tab (`sessionStorage`) when it goes, so that a reload
    /// resumes it (`Client.resumed`): a guest's session, not ended; `undefined` otherwise (an
    /// account's page signs in again instead). Not either for a guest only because its
    /// remembered sign-in was refused (`key_refused`): that person meant to be signed in, and
    /// is offered the sign-in form on a reload. Holds the session's resume token: a secret.
    pub fn resumable(&self) -> JsValue {
        match self.session.resumable().filter(|_| !self.key_refused) {
            Some(r) => js(&KeptSession::of(&r)),
            None => JsValue::UNDEFINED,
        }
    }

    /// The wall clock (`Date.now()`) read at `now` (the monotonic clock every other call is
    /// given): the lines made here from then on are stamped with the wall clock. Read both
    /// with each turn, before its calls (a clock step or a sleep then never shows in a stamp).
    pub fn set_wall_clock(&mut self, wall: f64, now: f64) {
        self.chat.set_wall_clock(millis(wall), millis(now));
    }

    /// The WebSocket opened.
    pub fn handle_connected(&mut self, now: f64) {
        self.session.handle_connected(millis(now));
        self.pump(millis(now));
    }

    /// The WebSocket failed to open or closed; `reason` is for the log and the UI.
    pub fn handle_disconnected(&mut self, reason: &str, now: f64) {
        self.session.handle_disconnected(reason, millis(now));
        self.pump(millis(now));
    }

    /// One binary WebSocket message arrived (one or more whole frames, prefixes included).
    pub fn handle_message(&mut self, bytes: &[u8], now: f64) {
        self.session.handle_message(bytes, millis(now));
        self.pump(millis(now));
    }

    /// The user typed `line` in the open conversation (chat for it, or a `/command`).
    pub fn handle_input(&mut self, line: &str, now: f64) {
        self.now = self.now.max(millis(now));
        if answered_here(&mut self.chat, line, self.now) {
            // Closing the open direct conversation reads the one landed in.
            self.pump(self.now);
            return;
        }
        // `/history` below the oldest line held (a room joined again keeps its lines, which
        // the session, asking below its own oldest since the join, does not know).
        if let Some((room, before, limit)) = self.chat.history_typed(line) {
            self.session.older(room, before, limit, millis(now));
            self.pump(millis(now));
            return;
        }
        if let Some(words) = self.chat.sent_elsewhere(line) {
            self.chat.note(words, self.now);
        }
        let to = self.chat.target();
        self.session.handle_input_in(line, to.as_ref(), millis(now));
        self.pump(millis(now));
        // The whole help: the page's keys below the commands (the session answered at once).
        if let Some(keys) = keys_help(line) {
            self.chat.note(keys, self.now);
        }
    }

    /// Whether the typed `line` says something in the open conversation (a line, `/me`, a
    /// `/msg` or `/notice` naming it): asked before `handle_input`, the page then goes down to
    /// the newest lines, where the line goes, as after one typed plainly.
    pub fn says_here(&self, line: &str) -> bool {
        says_here(&self.chat, line)
    }

    /// The sidebar's room box: joins `room` (`rust` or `#rust`) and opens it, or says in the
    /// open conversation why not and returns why (a name with a space is no room: the box
    /// typed `/join #a b` for `a b` until the fortieth session, which joined `#a` with the key
    /// `b`).
    pub fn join(&mut self, room: &str, now: f64) -> Option<String> {
        match RoomName::new(room.trim()) {
            Ok(room) => {
                self.handle_input(&format!("/join {room}"), now);
                None
            }
            Err(e) => {
                let why = e.to_string();
                self.now = self.now.max(millis(now));
                self.chat.note_error(why.clone(), self.now);
                self.pump(self.now);
                Some(why)
            }
        }
    }

    /// The time from `poll_timeout` has come.
    pub fn handle_timeout(&mut self, now: f64) {
        let now = millis(now);
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        if self.chat.poll_timeout().is_some_and(|t| t <= now) {
            self.chat.handle_timeout(now);
        }
        self.pump(now);
    }

    /// The network is back (the browser's `online` event): reconnect now if waiting to.
    pub fn reconnect_now(&mut self, now: f64) {
        self.session.reconnect_now(millis(now));
        self.pump(millis(now));
    }

    /// The computer may have slept (the wall clock moved far more than the monotonic one,
    /// which stops in a sleep in Chromium on Linux and macOS), or the network is back (the
    /// browser's `online` event): the link is checked now (a ping, a dead one given up within a
    /// few seconds, not at the next keepalive), or, waiting to reconnect, reconnects now unless
    /// the last wake did (wakes one after another keep to the backoff).
    pub fn check_link(&mut self, now: f64) {
        self.session.check_link(millis(now));
        self.pump(millis(now));
    }

    /// Opens the conversation with this key (`#room`, `@nick`). False if there is none.
    pub fn open(&mut self, key: &str) -> bool {
        let opened = ConvId::from_key(key).is_some_and(|id| self.chat.open(&id));
        // Leaving a room tells the account what was read there.
        self.pump(self.now);
        opened
    }

    /// Signs in to `account` with `password`; `remember` asks for a device key to keep (see
    /// `device_key`). Returns why not, in words, when the account or password cannot be
    /// sent; the answer comes as a `me` change (`account()`). Refused, the session ends
    /// (`conn().fatal` says why) rather than going on as a guest.
    pub fn sign_in(
        &mut self,
        account: &str,
        password: &str,
        remember: bool,
        now: f64,
    ) -> Option<String> {
        let (account, proof) = match password_proof(account, password) {
            Ok(p) => p,
            Err(why) => return Some(why),
        };
        self.refusal = None;
        self.session.sign_in(account, proof, remember, millis(now));
        // Asked for in the dialog: refused, the session ends and says why (not a guest then).
        self.session.require_sign_in();
        self.pump(millis(now));
        None
    }

    /// Signs in to `account` with a device key kept from an earlier remembered sign-in (hex,
    /// as `device_key` gave it). Returns why not when it is not one.
    pub fn sign_in_with_key(&mut self, account: &str, key: &str, now: f64) -> Option<String> {
        let account = match Nick::new(account.trim()) {
            Ok(a) => a,
            Err(e) => return Some(e.to_string()),
        };
        let Some(key) = key_from_hex(key) else {
            return Some("the kept sign-in key is damaged".into());
        };
        self.session
            .sign_in(account, Proof::Key(key), false, millis(now));
        self.pump(millis(now));
        None
    }

    /// Registers the nick asked for as an account with `password`, and signs in. Returns why
    /// not, in words, when the password is not one the server takes; refused by the server,
    /// the session ends (`conn().fatal` says why).
    pub fn register(&mut self, password: &str, remember: bool, now: f64) -> Option<String> {
        if let Some(why) = password_error(password) {
            return Some(why);
        }
        if let Some(why) = self.registration_of_guest() {
            return Some(why);
        }
        self.refusal = None;
        self.session
            .register(Password(password.to_owned()), remember, millis(now));
        self.session.require_sign_in();
        self.pump(millis(now));
        None
    }

    /// Signs a guest's session in to `account` where it stands (a guest's page asking in its
    /// dialog): the same connection, its rooms and conversations kept, which the server makes
    /// the account's. Returns why not, in words, as `sign_in` does. Refused, the session goes
    /// on as the guest it was (not ended, unlike `sign_in`): `take_refusal` says why, once
    /// `account_pending` is false.
    pub fn sign_in_here(
        &mut self,
        account: &str,
        password: &str,
        remember: bool,
        now: f64,
    ) -> Option<String> {
        let (account, proof) = match password_proof(account, password) {
            Ok(p) => p,
            Err(why) => return Some(why),
        };
        self.refusal = None;
        self.session.sign_in(account, proof, remember, millis(now));
        self.pump(millis(now));
        None
    }

    /// Registers a guest's session's nick (`me()`) as an account where it stands, and signs
    /// in, as `sign_in_here` does: refused (taken), it goes on as the guest it was and
    /// `take_refusal` says why. Returns why not when the password is not one the server takes.
    pub fn register_here(&mut self, password: &str, remember: bool, now: f64) -> Option<String> {
        if let Some(why) = password_error(password) {
            return Some(why);
        }
        if let Some(why) = self.registration_of_guest() {
            return Some(why);
        }
        self.refusal = None;
        self.session
            .register(Password(password.to_owned()), remember, millis(now));
        self.pump(millis(now));
        None
    }

    /// Renames a guest's session to `nick` for a registration under that nick
    /// (`register_here` once `me()` is `nick`); refused (taken), `take_refusal` says why.
    pub fn rename_here(&mut self, nick: &str, now: f64) -> Option<String> {
        let nick = match Nick::new(nick.trim()) {
            Ok(n) => n,
            Err(e) => return Some(e.to_string()),
        };
        self.refusal = None;
        self.session
            .handle_input(&format!("/nick {nick}"), millis(now));
        self.pump(millis(now));
        None
    }

    /// A sign-in or registration is waiting for the server's answer (or for a busy server, to
    /// be asked again by itself).
    pub fn account_pending(&self) -> bool {
        self.session.account_pending()
    }

    /// Why the sign-in, registration or rename asked last (`sign_in_here`, `register_here`,
    /// `rename_here`) was refused, in words for the sign-in dialog (`could not sign in: wrong
    /// account name or password`; see `dialog_refusal`); taken by this call, `undefined`
    /// when nothing was refused since.
    pub fn take_refusal(&mut self) -> Option<String> {
        self.refusal.take()
    }

    /// Why the session ended for good (`conn().fatal`), worded for the sign-in dialog as
    /// `take_refusal` is when an account refusal ended it (the dialog's own client's sign-in
    /// or registration refused: core ends it with that refusal's words), else as core says it;
    /// `undefined` while it goes on.
    pub fn fatal_in_dialog(&self) -> Option<String> {
        let fatal = self.session.fatal()?;
        Some(match &self.last_refusal {
            Some((said, words)) if said == fatal => words.clone(),
            _ => fatal.to_owned(),
        })
    }

    /// Signs out on this device: the server revokes its key and closes the connection, and
    /// the session comes back as a guest. `device_key()` is `undefined` from now on.
    pub fn sign_out(&mut self, now: f64) {
        self.session.sign_out(millis(now));
        self.pump(millis(now));
    }

    /// What this device is called (`Chromium on Linux`: see `browser_device_label`): a device
    /// key the server issues to it gets this label, which `/devices` and the devices panel
    /// show on the account's devices. Cleaned and cut to the label limit; blank says none.
    pub fn set_device_label(&mut self, label: &str) {
        self.session.set_device_label(DeviceLabel::cut(label));
    }

    /// Asks for the account's remembered devices for the devices panel: the answer comes as a
    /// `devices` change (read `devices_view()`), not as lines; why not (not connected, a server
    /// too old) comes as a line in the open conversation.
    pub fn list_devices(&mut self, now: f64) {
        self.devices_asked = true;
        self.session.list_devices(millis(now));
        self.pump(millis(now));
    }

    /// Forgets the remembered device `id` (8 hex digits, as `devices_view()` gives it): its
    /// key opens nothing after, and it is signed out if connected. What it did comes as a line
    /// in the open conversation. Ask `list_devices` after: the list then holds it no more.
    /// Returns why not when `id` is not one.
    pub fn forget_device(&mut self, id: &str, now: f64) -> Option<String> {
        let Ok(id) = u32::from_str_radix(id, 16) else {
            return Some(format!("{id:?} is not a device's id"));
        };
        self.session.forget_device(id, millis(now));
        self.pump(millis(now));
        None
    }

    /// The account's remembered devices as last listed for the panel (see [`DeviceView`]),
    /// oldest first, or `undefined` before any list.
    pub fn devices_view(&self) -> JsValue {
        match &self.devices {
            Some(list) => js(&list.iter().map(DeviceView::of).collect::<Vec<_>>()),
            None => JsValue::UNDEFINED,
        }
    }

    /// The account we are signed in to, or `undefined` for a guest.
    pub fn account(&self) -> Option<String> {
        self.chat.account().map(ToString::to_string)
    }

    /// The device key the session holds (hex), to keep across reloads; `undefined` when it
    /// holds none (not remembered, refused, signed out): forget any kept one then.
    pub fn device_key(&self) -> Option<String> {
        self.session.device_key().map(key_to_hex)
    }

    /// Whether the device key went because the server refused it (signed out elsewhere, the
    /// password changed, the account removed), until the next sign-in: the page then says why
    /// it forgets its kept key. Not when the person let it go here (`/logout` or Sign out, a
    /// `/login` to another account, `/password`): the conversation says those.
    pub fn key_refused(&self) -> bool {
        self.key_refused
    }

    /// Opens (starting it if needed) the direct conversation with `nick`; returns its key, or
    /// `undefined` if `nick` is not a nick.
    pub fn open_direct(&mut self, nick: &str) -> Option<String> {
        let nick = Nick::new(nick).ok()?;
        self.chat.open_direct(&nick);
        Some(self.chat.current().key())
    }

    /// The person scrolled to the top of the conversation with this key: if it is a room whose
    /// older lines may be loaded (none on their way, its beginning not here), they are asked for
    /// (below the oldest line it holds). True if they were.
    pub fn load_older(&mut self, key: &str, now: f64) -> bool {
        let Some((room, before)) = ConvId::from_key(key).and_then(|id| self.chat.want_older(&id))
        else {
            // Nothing to ask; the model may have learned the room's beginning is here.
            return false;
        };
        self.session
            .older(room, before, SCROLLBACK_PAGE, millis(now));
        self.pump(millis(now));
        true
    }

    /// Searches the stored lines for every word of `words` (taken as typed), in the room with
    /// key `room` or, when it is `undefined`, the room `words` starts with (`#rust borrow`, as
    /// `/search` reads it) or else every room we are in. Returns why not, in words, when the
    /// words cannot be searched for (blank, too long); the results come as a `search` change
    /// (read `search_view()`).
    pub fn search(&mut self, words: &str, room: Option<String>, now: f64) -> Option<String> {
        let (room, words) = match room.as_deref().map(RoomName::new) {
            Some(Ok(room)) => match Text::new(words.trim()) {
                Ok(words) => (Some(room), words),
                Err(e) => return Some(e.to_string()),
            },
            Some(Err(e)) => return Some(e.to_string()),
            None => match command::search_box(words) {
                Ok(found) => found,
                Err(e) => return Some(e.to_string()),
            },
        };
        self.session.search(room, words, millis(now));
        self.pump(millis(now));
        None
    }

    /// The person is done with the search's results.
    pub fn close_search(&mut self) {
        self.chat.close_search();
    }

    /// The search asked for last and its results (see [`SearchView`]), or `undefined`.
    pub fn search_view(&self) -> JsValue {
        match self.chat.search() {
            Some(search) => js(&SearchView::of(search, self.chat.me())),
            None => JsValue::UNDEFINED,
        }
    }

    /// Whether the person is looking at the page (it is visible): while not, what arrives in the
    /// open conversation counts as unread too.
    pub fn set_attention(&mut self, looking: bool) {
        self.chat.set_attention(looking);
        self.pump(self.now);
    }

    /// The next thing to do with the WebSocket: `"connect"`, `"close"`, or `undefined`.
    pub fn poll_action(&mut self) -> Option<String> {
        self.actions.pop_front().map(|a| {
            match a {
                Action::Connect => "connect",
                Action::Close => "close",
            }
            .to_owned()
        })
    }

    /// The next WebSocket message to send, or `undefined`.
    pub fn poll_transmit(&mut self) -> Option<js_sys::Uint8Array> {
        self.session
            .poll_transmit()
            .map(|b| js_sys::Uint8Array::from(&b[..]))
    }

    /// The next change to the model as a plain object (see [`ChangeView`]), or `undefined`.
    pub fn poll_change(&mut self) -> JsValue {
        if core::mem::take(&mut self.devices_changed) {
            return js(&ChangeView::Devices);
        }
        match self.chat.poll_change() {
            Some(change) => js(&ChangeView::of(&change, &self.chat)),
            None => JsValue::UNDEFINED,
        }
    }

    /// The next mention or direct message to notify about, as `{key, title, body}`, or
    /// `undefined`.
    pub fn poll_alert(&mut self) -> JsValue {
        match self.chat.poll_alert() {
            Some(alert) => {
                let (title, body) =
                    render::alert_words(&alert.from, alert.room.as_ref(), &alert.text);
                js(&AlertView {
                    key: alert.conv.key(),
                    title,
                    body,
                })
            }
            None => JsValue::UNDEFINED,
        }
    }

    /// When to call `handle_timeout` next (on the monotonic clock of `now`), or `undefined` for never.
    pub fn poll_timeout(&self) -> Option<f64> {
        let next = match (self.session.poll_timeout(), self.chat.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| num(t.0))
    }

    /// Our nick.
    pub fn me(&self) -> String {
        self.chat.me().to_string()
    }

    /// The connection as `{state, at?, attempt?, everConnected, fatal?}`; `state` is
    /// `connecting`, `connected`, `reconnecting` or `closed`; `fatal` says why the session
    /// ended when that was not the user's `/quit`.
    pub fn conn(&self) -> JsValue {
        js(&ConnView::of(&self.chat, self.session.fatal()))
    }

    /// The key of the open conversation (`*` when none is).
    pub fn current(&self) -> String {
        self.chat.current().key()
    }

    /// The window title, with the unread and mention counts.
    pub fn title(&self) -> String {
        self.chat.title()
    }

    /// The conversations to list, in order, as [`ConvSummary`] objects.
    pub fn conversations(&self) -> JsValue {
        let list: Vec<ConvSummary> = self.chat.conversations().map(ConvSummary::of).collect();
        js(&list)
    }

    /// Everything about one conversation (see [`ConvView`]), or `undefined` if there is none:
    /// for drawing it whole (when it is first shown, or after a `{type: "all"}` change).
    pub fn conversation(&self, key: &str) -> JsValue {
        let Some(conv) = ConvId::from_key(key).and_then(|id| self.chat.conv(&id)) else {
            return JsValue::UNDEFINED;
        };
        js(&ConvView::of(conv, &self.chat))
    }

    /// A room's members, sorted (empty for anything else).
    pub fn members(&self, key: &str) -> Vec<String> {
        ConvId::from_key(key)
            .and_then(|id| self.chat.conv(&id))
            .map(|c| c.members().iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    /// How many members a room has: the server's count in a big room (whose joins and parts
    /// come summed up, and whose list may hold fewer: `/who` lists them), else the list's length.
    pub fn member_count(&self, key: &str) -> u32 {
        ConvId::from_key(key)
            .and_then(|id| self.chat.conv(&id))
            .map_or(0, |c| u32::try_from(c.member_count()).unwrap_or(u32::MAX))
    }

    /// A room's settings (see [`PolicyView`]): founder, operators, voiced, modes, the ban list
    /// once asked for, and whether we may moderate. `undefined` if we are not in the room.
    pub fn policy(&self, key: &str) -> JsValue {
        match room_of(key).and_then(|room| PolicyView::of(&self.chat, &room)) {
            Some(view) => js(&view),
            None => JsValue::UNDEFINED,
        }
    }

    /// A member's standing in a room: `founder`, `operator`, `voiced` or `member`.
    pub fn role(&self, key: &str, nick: &str) -> String {
        let role = match (room_of(key), Nick::new(nick)) {
            (Some(room), Ok(nick)) => self.chat.role(&room, &nick),
            _ => Role::Member,
        };
        role_name(role).to_owned()
    }

    /// A member's away message in a room, while they are away (`undefined` otherwise).
    pub fn away(&self, key: &str, nick: &str) -> Option<String> {
        let (room, nick) = (room_of(key)?, Nick::new(nick).ok()?);
        self.chat.away(&room, &nick).map(ToString::to_string)
    }

    /// What a member's menu offers us to do to `nick` in the room with key `room`, in order:
    /// action names [`Client::moderate`] takes (none unless we may moderate the room; see
    /// core's [`Chat::member_actions`]).
    pub fn member_actions(&self, room: &str, nick: &str) -> Vec<String> {
        let (Some(room), Ok(nick)) = (room_of(room), Nick::new(nick)) else {
            return Vec::new();
        };
        self.chat
            .member_actions(&room, &nick)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// An operator's action in the room with key `room` (see [`mod_action`] for `action`,
    /// `target` and `arg`). Returns why not, in words, when it cannot be sent as asked (no such
    /// room, a bad duration or mode; also an error line in the open conversation); the server may still refuse it (an `error` line says
    /// why), and done it comes back as a line and a `policy` change.
    pub fn moderate(
        &mut self,
        room: &str,
        action: &str,
        target: &str,
        arg: &str,
        now: f64,
    ) -> Option<String> {
        let action = match room_of(room).ok_or_else(|| format!("{room} is not a room")) {
            Ok(room) => mod_action(action, target, arg).map(|a| (room, a)),
            Err(why) => Err(why),
        };
        match action {
            Ok((room, action)) => {
                self.session.moderate(room, action, millis(now));
                self.pump(millis(now));
                None
            }
            Err(why) => {
                // Said where the person is looking, as a typed command's mistake would be.
                self.chat.note_error(why.clone(), millis(now));
                self.pump(millis(now));
                Some(why)
            }
        }
    }

    /// What Tab puts in place of `word` (the text before the cursor, back to a space), in the
    /// order repeated Tabs cycle through, as the terminal client completes: at the start of
    /// the line (`line_start`) a `/` word to the commands (`/jo`: `/join `), a `#` word to the
    /// rooms we are in, anything else to the open room's members; each followed by a space,
    /// or by `: ` for a nick that starts the line (addressing someone). Empty: nothing fits.
    pub fn completions(&self, word: &str, line_start: bool) -> Vec<String> {
        self.chat
            .completions(word, line_start)
            .into_iter()
            .map(|found| {
                let nick = !found.starts_with(['/', '#']);
                let suffix = if line_start && nick { ": " } else { " " };
                found + suffix
            })
            .collect()
    }
}

impl Client {
    /// Why a registration of our nick cannot be asked, when it is a guest's (`guest` and
    /// digits, core's [`Nick::is_guest`]), which no account may have: said at once, in the
    /// dialog's words (the server's name `/nick`, typed at the bottom).
    fn registration_of_guest(&self) -> Option<String> {
        self.chat
            .me()
            .is_guest()
            .then(|| GUEST_NICK_REFUSED.to_owned())
    }

    /// A client driving `session` (whose nick is `nick`), its first events taken.
    fn driving(session: Session, nick: Nick, now: f64) -> Client {
        let mut client = Client {
            session,
            chat: Chat::new(nick),
            actions: VecDeque::new(),
            now: millis(now),
            held_key: false,
            key_refused: false,
            devices_asked: false,
            devices: None,
            devices_changed: false,
            refusal: None,
            checking: None,
            last_refusal: None,
        };
        client.pump(millis(now));
        client
    }

    /// Moves the session's events into the model (and the WebSocket instructions to the page),
    /// and the model's read markers to the session.
    fn pump(&mut self, now: Millis) {
        self.now = self.now.max(now);
        let now = self.now;
        // A key the session held and forgot while these events were made was refused by the
        // server if an account error came with them (signing out, a typed `/login` or
        // `/password` forget it too, at the person's word, with no error).
        let held = self.session.device_key().is_some();
        let mut refused = false;
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Connect => self.actions.push_back(Action::Connect),
                Event::Close => self.actions.push_back(Action::Close),
                Event::Devices(list) if self.devices_asked => {
                    self.devices_asked = false;
                    self.devices = Some(list);
                    self.devices_changed = true;
                }
                ev => {
                    match &ev {
                        Event::Error {
                            about: About::Account,
                            kind,
                            text,
                        } => {
                            refused = true;
                            let words = dialog_refusal(
                                self.checking.as_ref(),
                                *kind,
                                text,
                                self.session.refusal_detail(),
                            );
                            self.refusal = Some(words.clone());
                            self.last_refusal = Some((text.clone(), words));
                        }
                        // A rename the dialog asked (`rename_here`, its Register for another
                        // nick) refused as taken: the server's words for a registered account
                        // name a command typed at the bottom (`sign in with /login rosa
                        // PASSWORD`), which the dialog has its Sign in button for. Worded by
                        // kind (until the forty-second session's review, as the server said it).
                        Event::Error {
                            about: About::Nick(nick),
                            kind: Some(ErrorKind::NickTaken),
                            ..
                        } => {
                            self.refusal = Some(format!(
                                "could not take the nick {nick}: it is in use, reserved, or a \
                                 registered account; if that account is yours, press Sign in \
                                 with its password"
                            ));
                        }
                        Event::Error {
                            about: About::Nick(_),
                            text,
                            ..
                        } => self.refusal = Some(text.clone()),
                        Event::SignedIn { .. } => self.key_refused = false,
                        _ => {}
                    }
                    self.chat.handle_event(&ev, now);
                }
            }
        }
        self.checking = self.session.checking_registration().cloned();
        if self.held_key && !held && refused {
            self.key_refused = true;
        }
        self.held_key = held;
        while let Some((room, seq)) = self.chat.poll_read(now) {
            self.session.read(room, seq, now);
        }
    }
}

/// A remembered device as the devices panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// Its id, 8 hex digits (what `forget_device` takes).
    pub id: String,
    /// What it is called, absent when its client gave no label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was remembered (Unix milliseconds).
    pub remembered: f64,
    /// When it was last used (Unix milliseconds), absent when not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<f64>,
    /// Through which door, in words (`the page`), absent when not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub door: Option<String>,
    /// From which address, absent when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Its last use in words (`last used 2026-12-06 21:03 UTC through the page from
    /// 203.0.113.7`).
    pub last: String,
    /// It is this device (no Forget button: signing out does that).
    pub this: bool,
}

impl DeviceView {
    fn of(d: &RememberedDevice) -> DeviceView {
        let used = d.used.as_ref();
        let last = match used {
            Some(u) => {
                let from = u.address.map(|a| format!(" from {a}")).unwrap_or_default();
                format!(
                    "last used {} UTC through {}{from}",
                    render::utc_minute(u.at),
                    u.door.words()
                )
            }
            None => "last use not recorded".to_owned(),
        };
        DeviceView {
            id: RememberedDevice::id_words(d.id),
            label: d.label.as_ref().map(|l| l.as_str().to_owned()),
            remembered: num(d.remembered.0),
            used: used.map(|u| num(u.at.0)),
            door: used.map(|u| u.door.words().to_owned()),
            address: used.and_then(|u| u.address).map(|a| a.to_string()),
            last,
            this: d.this,
        }
    }
}

/// What a browser calls itself, as a device label: its brand and system (`Chromium on
/// Linux`, `Firefox on Windows`). `brands` are `navigator.userAgentData.brands`' names where
/// the browser has them (empty otherwise) and `platform` its `platform`; else the brand and
/// system are read from `user_agent` (`navigator.userAgent`). `natter page` when neither
/// tells anything.
#[wasm_bindgen]
pub fn browser_device_label(brands: Vec<String>, platform: &str, user_agent: &str) -> String {
    // Brands are listed with made-up ones ("Not A(Brand") among them, and a browser built
    // on Chromium lists "Chromium" beside its own name: its own is the one to show.
    let real = |b: &&String| {
        let b = b.to_ascii_lowercase();
        !b.contains("not") && !b.contains("brand")
    };
    let listed: Vec<&String> = brands.iter().filter(real).collect();
    let brand = listed
        .iter()
        .find(|b| b.as_str() != "Chromium")
        .or(listed.first())
        .map(|b| {
            b.trim_start_matches("Google ")
                .trim_start_matches("Headless")
                .to_owned()
        })
        .or_else(|| ua_brand(user_agent).map(str::to_owned));
    let platform = Some(platform.trim())
        .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("unknown"))
        .map(str::to_owned)
        .or_else(|| ua_system(user_agent).map(str::to_owned));
    let label = match (brand, platform) {
        (Some(b), Some(p)) => format!("{b} on {p}"),
        (Some(b), None) => b,
        (None, Some(p)) => format!("natter page on {p}"),
        (None, None) => "natter page".to_owned(),
    };
    DeviceLabel::cut(&label).map_or_else(|| "natter page".to_owned(), |l| l.as_str().to_owned())
}

/// The browser a user agent string names, the most specific first (Edge and Opera say
/// "Chrome" too, Chrome says "Safari").
fn ua_brand(ua: &str) -> Option<&'static str> {
    [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name)
}

/// The system a user agent string names (Android and iOS before the desktop systems they
/// also name).
fn ua_system(ua: &str) -> Option<&'static str> {
    [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name)
}

/// The room a conversation key names (`#room`), if it names one.
fn room_of(key: &str) -> Option<RoomName> {
    match ConvId::from_key(key)? {
        ConvId::Room(room) => Some(room),
        _ => None,
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Founder => "founder",
        Role::Operator => "operator",
        Role::Voiced => "voiced",
        Role::Member => "member",
    }
}

/// An operator's action as the page names it: core's reading of a moderation menu
/// ([`command::menu_action`]: the commands' rules and words), its refusal in words.
pub fn mod_action(action: &str, target: &str, arg: &str) -> Result<ModAction, String> {
    command::menu_action(action, target, arg).map_err(|e| e.to_string())
}

/// A device key as the page keeps it: 64 hex digits.
fn key_to_hex(key: &DeviceKey) -> String {
    hex32(&key.0)
}

/// A kept device key read back; `None` if it is not 64 hex digits.
fn key_from_hex(hex: &str) -> Option<DeviceKey> {
    from_hex32(hex).map(DeviceKey)
}

/// 32 bytes (a device key, a resume token) as 64 hex digits.
fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes read back from 64 hex digits; `None` if they are not that.
fn from_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    let mut bytes = [0u8; 32];
    if hex.len() != bytes.len() * 2 {
        return None;
    }
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(bytes)
}

/// What `/help` adds on the page, below the commands: its keys and clicks (the TUI says its
/// own).
const KEYS_HELP: &str = "keys: Enter sends, Up/Down input history, Tab completes a nick, a /command at the start or a \
#room you are in (again: the next match), Esc \
closes search results (or a drawer on a phone); a search hit (click, or Enter) opens its room at \
that line; scroll to the top of a room for its older lines; click a member to write to them (an \
operator of the room gets a menu); /query nick opens a direct conversation (/part there closes it), \
/clear empties the open conversation on this page (/clear all: every one)";

/// The keys' help when `line` asks for the whole help (`/help`, `/?`; `/help join` is about
/// one command).
fn keys_help(line: &str) -> Option<&'static str> {
    matches!(
        command::parse(line),
        Ok(Some(command::Input::Command(command::Command::Help(None))))
    )
    .then_some(KEYS_HELP)
}

/// The account and proof a password sign-in sends, or why it cannot be sent, in words.
fn password_proof(account: &str, password: &str) -> Result<(Nick, Proof), String> {
    let account = Nick::new(account.trim()).map_err(|e| e.to_string())?;
    if password.is_empty() {
        return Err("type your password".into());
    }
    Ok((account, Proof::Password(Password(password.to_owned()))))
}

/// How `/clear` is typed.
const CLEAR_USAGE: &str = "usage: /clear [all] (empties the open conversation on this page, or \
every one; nothing is sent)";

/// `/help clear`'s line, as `/help` words the session's commands.
const CLEAR_HELP: &str = "/clear [all]             empty the open conversation on this page \
(all: every one); nothing is sent";

/// What the page answers itself, as the terminal client does (README): `/clear` empties the
/// open conversation here (`/clear all`: every one) and `/help clear` says so; `/query nick`
/// opens the direct conversation with nick (`/query` alone says how it is typed); `/part` typed
/// in a direct conversation closes it (the session would only say it is no room). Nothing goes
/// to the session then; true when `line` was one of them (`/query nick text` opens the
/// conversation and is not: the text is sent, to it).
fn answered_here(chat: &mut Chat, line: &str, now: Millis) -> bool {
    if let Err(command::CommandError::NoHelp(name)) = command::parse(line)
        && name.eq_ignore_ascii_case("clear")
    {
        chat.note(CLEAR_HELP, now);
        return true;
    }
    if let Some(clear) = command::clear(line) {
        match clear {
            command::Clear::Usage => chat.note_error(CLEAR_USAGE, now),
            command::Clear::Open | command::Clear::All => {
                chat.clear_view(clear == command::Clear::All)
            }
        }
        return true;
    }
    // `/query nick [text]` opens the direct conversation with nick (the text goes to the
    // session), `/part` in a direct conversation closes it: the conversations' own.
    chat.typed(line, now) == Typed::Answered
}

/// Whether a typed `line` says something in the open conversation: chat for it (`//text`
/// too), `/me`, or a `/msg` or `/notice` naming it (`/msg #thisroom hi`, or `/msg bob hi` in
/// the conversation with bob). The page goes down to the newest lines then, where it goes.
fn says_here(chat: &Chat, line: &str) -> bool {
    use command::{Command, Input};
    let here = chat.current();
    match command::parse(line) {
        Ok(Some(Input::Say(_) | Input::Command(Command::Me(_)))) => true,
        Ok(Some(Input::Command(Command::SayIn { room, .. } | Command::Notice { room, .. }))) => {
            *here == ConvId::Room(room)
        }
        Ok(Some(Input::Command(Command::Msg { to, .. } | Command::NoticeTo { to, .. }))) => {
            *here == ConvId::direct(&to)
        }
        _ => false,
    }
}

/// A guest's session as the page keeps it for its tab ([`Client::resumable`]), to resume after
/// a reload ([`Client::resumed`]): plain data, the token in hex; its rooms, and the last seq
/// seen in each and the key it was joined with ("" for none; in the same order), which a
/// reload past the server's resume window joins it again with; the id of the last message it
/// numbered (the reloaded page's go on after it: the server drops one it takes for a resend).
/// The token and the keys are secrets: the page keeps them for its tab only. Read back from plain
/// arguments, not deserialised: that would cost the page a JS deserialiser.
#[derive(Debug, Serialize, PartialEq)]
struct KeptSession {
    nick: String,
    token: String,
    rooms: Vec<String>,
    seqs: Vec<f64>,
    keys: Vec<String>,
    #[serde(rename = "lastId")]
    last_id: f64,
}

impl KeptSession {
    fn of(r: &Resumable) -> KeptSession {
        KeptSession {
            nick: r.nick.to_string(),
            token: hex32(&r.token.0),
            rooms: r.rooms.iter().map(|(room, _)| room.to_string()).collect(),
            seqs: r.rooms.iter().map(|(_, seq)| num(seq.0)).collect(),
            keys: r
                .rooms
                .iter()
                .map(|(room, _)| {
                    r.keys
                        .iter()
                        .find(|(r, _)| r == room)
                        .map_or_else(String::new, |(_, key)| key.to_string())
                })
                .collect(),
            last_id: num(r.last_id.0),
        }
    }

    /// What it keeps, checked: why not, in words, if anything in it is not what it should be.
    fn resumable(&self) -> Result<Resumable, String> {
        let nick = Nick::new(&self.nick).map_err(|e| e.to_string())?;
        let token = from_hex32(&self.token).ok_or("the kept session's token is damaged")?;
        if self.rooms.len() != self.seqs.len() {
            return Err("the kept session's rooms and seqs do not match".into());
        }
        let rooms = self
            .rooms
            .iter()
            .zip(&self.seqs)
            .take(MAX_ROOMS_PER_USER)
            .map(|(room, seq)| {
                Ok((
                    RoomName::new(room).map_err(|e| e.to_string())?,
                    Seq(*seq as u64),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        // A session kept before keys were: none (fewer keys than rooms are as many "").
        let keys = rooms
            .iter()
            .zip(&self.keys)
            .filter(|(_, key)| !key.is_empty())
            .map(|((room, _), key)| Ok((room.clone(), Text::new(key).map_err(|e| e.to_string())?)))
            .collect::<Result<_, String>>()?;
        Ok(Resumable {
            nick,
            token: ResumeToken(token),
            rooms,
            last_id: MsgId(self.last_id as u64),
            keys,
        })
    }
}

/// Why `password` cannot be an account's password, in words, or `undefined` if it can (the
/// register form checks with the server's own rule before sending).
#[wasm_bindgen]
pub fn password_error(password: &str) -> Option<String> {
    natter_core::accounts::check_password(&Password(password.to_owned()))
        .err()
        .map(|e| e.to_string())
}

/// Whether a session a tab kept when it closed at `at` (a `Date.now()` value) is still worth
/// resuming at `now`: within the server's resume window (core's [`Resumable::fresh`]; the page
/// offers it to the next tab opened only then).
#[wasm_bindgen]
pub fn kept_session_fresh(at: f64, now: f64) -> bool {
    Resumable::fresh(millis(at), millis(now))
}

/// Whether a typed line carries a password (`/login`, `/register`, `/password`): the page keeps
/// such a line out of its Up/Down history, as the terminal client does, so that Up on a
/// shared screen never shows it.
#[wasm_bindgen]
pub fn carries_password(line: &str) -> bool {
    natter_core::command::carries_password(line)
}

/// A guest's nick asked to be registered, in the sign-in dialog's words (its nick field and
/// Register button do what the server's words say to type at the bottom, `/nick`).
const GUEST_NICK_REFUSED: &str = "could not register: guest nicks cannot be registered: pick another nick above and press \
     Register again";

/// The refusal of an account request (of kind `kind`, said `text` by core), worded for the
/// sign-in dialog, by what was refused, never by its words: core's name commands typed at the
/// bottom (`(/register again)`, `(/login gus PASSWORD)`), which the dialog has no place for;
/// it names its buttons. `checking`: the nick a registration whose answer a drop lost was
/// being checked for (by a sign-in), if one was: its check found no such account, was turned
/// away (throttled, too fast), or was lost in drops until given up (no kind). Anything else
/// is said as core says it. (Until the forty-second session's review the check turned away
/// or given up was said in core's words, `/login` and all.) `detail`: the server's own words
/// for the refusal (core's `refusal_detail`), whose exact wait a throttled check says (until
/// the forty-third session, "wait a while").
fn dialog_refusal(
    checking: Option<&Nick>,
    kind: Option<ErrorKind>,
    text: &str,
    detail: Option<&str>,
) -> String {
    let Some(nick) = checking else {
        return text.to_owned();
    };
    let unknown = |why: &str, then: &str| {
        format!(
            "could not find out whether your registration of {nick} went through: {why}; \
             {then}press Sign in with {nick} and the password you chose to find out"
        )
    };
    let turned_away = "the connection dropped before the server answered it, and the server \
                       turned away the sign-in that checks it";
    match kind {
        Some(ErrorKind::SignInFailed) => format!(
            "your registration of {nick} did not go through: the connection dropped before the \
             server answered, and the server has no account {nick} with that password; press \
             Register to try again"
        ),
        Some(ErrorKind::Throttled) => match detail {
            // `too many failed sign-ins from your address: try again in 30 s`
            Some(detail) => unknown(
                &format!("{turned_away} ({detail})"),
                "once that wait is over, ",
            ),
            None => unknown(
                &format!("{turned_away} (too many tries)"),
                "wait a while, then ",
            ),
        },
        Some(ErrorKind::Flood) => unknown(
            &format!("{turned_away} (too many requests at once)"),
            "in a moment, ",
        ),
        None => unknown(
            "the connection dropped each time before the server answered",
            "",
        ),
        Some(_) => text.to_owned(),
    }
}

/// Why `nick` cannot be used, in words, or `undefined` if it can: the nick prompt checks with
/// core's own rule before connecting.
#[wasm_bindgen]
pub fn nick_error(nick: &str) -> Option<String> {
    Nick::new(nick.trim()).err().map(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Sends panics to the browser console with their message instead of a bare "unreachable".
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("natter-web panicked: {info}"))
    }));
}

// ---- what the page reads: plain objects, names and texts as strings, numbers as numbers;
// optional fields are absent (`undefined`) when there is nothing ----

/// The connection, for the status line and the banner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnView {
    /// `connecting`, `connected`, `reconnecting` or `closed`.
    pub state: &'static str,
    /// Reconnecting: when the next attempt starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
    /// Reconnecting: attempts since the last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// A welcome was seen (so a lost connection is a reconnect).
    pub ever_connected: bool,
    /// Why the session ended when that was not the user's `/quit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<String>,
}

impl ConnView {
    fn of(chat: &Chat, fatal: Option<&str>) -> ConnView {
        let (state, at, attempt) = match chat.conn() {
            ConnState::Connecting => ("connecting", None, None),
            ConnState::Connected => ("connected", None, None),
            ConnState::Reconnecting { at, attempt, .. } => {
                ("reconnecting", Some(num(at.0)), Some(attempt))
            }
            ConnState::Closed => ("closed", None, None),
        };
        ConnView {
            state,
            at,
            attempt,
            ever_connected: chat.ever_connected(),
            fatal: fatal.map(str::to_owned),
        }
    }
}

/// `room` or `direct`.
fn conv_kind(id: &ConvId) -> &'static str {
    match id {
        ConvId::Room(_) => "room",
        ConvId::Direct(_) => "direct",
        ConvId::Server => "server",
    }
}

/// One entry of the conversation list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvSummary {
    /// Its key (`#room`, `@nick`).
    pub key: String,
    /// How it is named (`#lobby`, `Bob`).
    pub label: String,
    /// `room` or `direct`.
    pub kind: &'static str,
    /// Unread chat lines.
    pub unread: u32,
    /// Of those, mentions of us and direct messages.
    pub mentions: u32,
    /// A room's topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl ConvSummary {
    fn of(conv: &Conv) -> ConvSummary {
        ConvSummary {
            key: conv.id().key(),
            label: conv.label().to_owned(),
            kind: conv_kind(conv.id()),
            unread: conv.unread(),
            mentions: conv.mentions(),
            topic: conv.topic().map(ToString::to_string),
        }
    }
}

/// A room's settings, for the member list's marks and the settings panel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyView {
    /// The founder's account, when the room is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub founder: Option<String>,
    /// Operators' accounts.
    pub ops: Vec<String>,
    /// Voiced accounts or nicks.
    pub voiced: Vec<String>,
    /// Modes as IRC writes them (`+imt`).
    pub letters: String,
    /// `+i`.
    pub invite_only: bool,
    /// `+m`.
    pub moderated: bool,
    /// `+t`.
    pub topic_ops: bool,
    /// `+k`: the key (operators see it; others see `*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `+l`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// We are the founder or an operator: offer the actions.
    pub am_op: bool,
    /// We are the founder: offer op and deop.
    pub am_founder: bool,
    /// Bans, once asked for (`moderate(room, "bans")`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bans: Option<Vec<EntryView>>,
    /// Mutes, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutes: Option<Vec<EntryView>>,
    /// The settings changed since the bans were fetched: ask again to show them.
    pub bans_stale: bool,
}

/// One ban or mute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryView {
    /// The mask, as `unban` takes it (`account:bob`, `nick:bob`, `203.0.113.0/24`).
    pub mask: String,
    /// It in words (mask, who set it, until when, why).
    pub words: String,
}

impl PolicyView {
    fn of(chat: &Chat, room: &RoomName) -> Option<PolicyView> {
        let p = chat.policy(room)?;
        let names = |v: &[Nick]| v.iter().map(ToString::to_string).collect();
        let entries = |v: &Option<Vec<Entry>>| {
            v.as_ref().map(|v| {
                v.iter()
                    .map(|e| EntryView {
                        mask: e.mask.to_string(),
                        words: render::entry_words(e),
                    })
                    .collect()
            })
        };
        Some(PolicyView {
            founder: p.founder.as_ref().map(ToString::to_string),
            ops: names(&p.ops),
            voiced: names(&p.voiced),
            letters: p.modes.letters(),
            invite_only: p.modes.invite_only,
            moderated: p.modes.moderated,
            topic_ops: p.modes.topic_ops,
            key: p.modes.key.as_ref().map(ToString::to_string),
            limit: p.modes.limit,
            am_op: chat.am_op(room),
            am_founder: chat.am_founder(room),
            bans: entries(&p.bans),
            mutes: entries(&p.mutes),
            bans_stale: p.bans_stale,
        })
    }
}

/// One conversation, whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvView {
    /// Its key.
    pub key: String,
    /// How it is named.
    pub label: String,
    /// `room`, `direct` or `server`.
    pub kind: &'static str,
    /// A room's topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// A room's members, sorted.
    pub members: Vec<String>,
    /// How many members it has (more than `members` holds in a big room).
    pub member_count: u32,
    /// Its lines, oldest first.
    pub lines: Vec<LineView>,
    /// Lines typed here that the server has not acknowledged, oldest first.
    pub outgoing: Vec<OutgoingView>,
    /// A room's older lines (see [`ScrollbackView`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrollback: Option<ScrollbackView>,
}

impl ConvView {
    fn of(conv: &Conv, chat: &Chat) -> ConvView {
        ConvView {
            scrollback: ScrollbackView::of(conv),
            key: conv.id().key(),
            label: conv.label().to_owned(),
            kind: conv_kind(conv.id()),
            topic: conv.topic().map(ToString::to_string),
            members: conv.members().iter().map(ToString::to_string).collect(),
            member_count: u32::try_from(conv.member_count()).unwrap_or(u32::MAX),
            lines: conv
                .lines()
                .iter()
                .map(|l| LineView::of(l, chat.me()))
                .collect(),
            outgoing: outgoing(conv.id(), chat),
        }
    }
}

fn outgoing(id: &ConvId, chat: &Chat) -> Vec<OutgoingView> {
    chat.outgoing(id)
        .map(|o| OutgoingView::of(o, chat.me()))
        .collect()
}

/// One line, as the page draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    /// Its identity (unique; the DOM keys by it).
    pub id: f64,
    /// Server time (Unix milliseconds), or when a local line was made.
    pub at: f64,
    /// A room event's seq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<f64>,
    /// `say`, `act`, `said-notice` (a notice: `-alice- text`), `event`, `notice` (the
    /// server's or the session's words), `error`, `gap` or `rooms`.
    pub kind: &'static str,
    /// Who (chat lines, and room events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The chat text, or the words.
    pub text: String,
    /// Our own chat line.
    pub mine: bool,
    /// Mentions our nick (or is a direct message to us).
    pub mention: bool,
    /// Where our nick is in `text`, as `[start, end]` in UTF-16 code units (what JS strings
    /// index by), for highlighting.
    pub spans: Vec<[u32; 2]>,
    /// Not delivered, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// A room list's rooms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<RoomLine>>,
}

/// One room of a room list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomLine {
    /// Room.
    pub room: String,
    /// Members.
    pub members: u32,
}

/// A byte offset into `s` as a UTF-16 offset (what JS strings index by).
fn utf16_at(s: &str, byte: usize) -> u32 {
    let head = s.get(..byte).unwrap_or(s);
    u32::try_from(head.encode_utf16().count()).unwrap_or(u32::MAX)
}

impl LineView {
    fn of(line: &Line, me: &Nick) -> LineView {
        let (kind, from, text) = match &line.kind {
            LineKind::Say { from, text } => ("say", Some(from.to_string()), text.to_string()),
            LineKind::Act { from, text } => ("act", Some(from.to_string()), text.to_string()),
            LineKind::UserNotice { from, text } => {
                ("said-notice", Some(from.to_string()), text.to_string())
            }
            LineKind::Event { who, words } => ("event", Some(who.to_string()), words.clone()),
            LineKind::Notice(words) => ("notice", None, words.clone()),
            LineKind::Error(words) => ("error", None, words.clone()),
            LineKind::Gap { words, .. } => ("gap", None, words.clone()),
            LineKind::Rooms { words, .. } => ("rooms", None, words.clone()),
        };
        let spans = if line.mention && matches!(kind, "say" | "act" | "said-notice") {
            mention_spans(&text, me)
                .into_iter()
                .map(|r| [utf16_at(&text, r.start), utf16_at(&text, r.end)])
                .collect()
        } else {
            Vec::new()
        };
        let rooms = match &line.kind {
            LineKind::Rooms { rooms, .. } => Some(
                rooms
                    .iter()
                    .map(|r| RoomLine {
                        room: r.room.to_string(),
                        members: r.members,
                    })
                    .collect(),
            ),
            _ => None,
        };
        LineView {
            id: num(line.id.0),
            at: num(line.at.0),
            seq: line.seq.map(|s| num(s.0)),
            kind,
            from,
            text,
            mine: line.mine,
            mention: line.mention,
            spans,
            failed: line.failed.clone(),
            rooms,
        }
    }
}

/// What a room knows of its older lines, for the top of its log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrollbackView {
    /// `more` (scrolling to the top loads them), `loading`, `failed` (may be tried again),
    /// `start` (the room's beginning is here), `gone` (nothing older is kept, though the
    /// room began before) or `full` (no more fit).
    pub state: &'static str,
    /// What to say about it, absent for `more`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ScrollbackView {
    fn of(conv: &Conv) -> Option<ScrollbackView> {
        let ConvId::Room(room) = conv.id() else {
            return None;
        };
        let state = conv.scrollback()?;
        let name = match state {
            Scrollback::More => "more",
            Scrollback::Loading => "loading",
            Scrollback::Failed(_) => "failed",
            Scrollback::Start => "start",
            Scrollback::Gone => "gone",
            Scrollback::Full => "full",
        };
        Some(ScrollbackView {
            state: name,
            text: render::scrollback_words(room, &state),
        })
    }
}

/// The search asked for last, and its results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchView {
    /// What it is and how it went, in words (`3 results for "x" in #rust`).
    pub title: String,
    /// `searching`, `done` or `failed`.
    pub state: &'static str,
    /// The words searched for.
    pub words: String,
    /// The room searched, absent for every room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The hits, newest first.
    pub hits: Vec<HitView>,
}

impl SearchView {
    fn of(search: &Search, me: &Nick) -> SearchView {
        SearchView {
            title: search.title(),
            state: match search.state() {
                SearchState::Searching => "searching",
                SearchState::Done => "done",
                SearchState::Failed(_) => "failed",
            },
            words: search.words().to_string(),
            room: search.room().map(ToString::to_string),
            hits: search.hits().iter().map(|h| HitView::of(h, me)).collect(),
        }
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HitView {
    /// The room it was said in (also its conversation's key).
    pub room: String,
    /// The line: time, who, what, mentions.
    pub line: LineView,
    /// The whole hit in words, times in UTC (`[#rust 2026-12-02 14:03] <alice> hi`).
    pub words: String,
}

impl HitView {
    fn of(hit: &Hit, me: &Nick) -> HitView {
        HitView {
            room: hit.room.to_string(),
            line: LineView::of(&hit.line, me),
            words: hit.words.clone(),
        }
    }
}

/// A line typed and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutgoingView {
    /// The session's message id.
    pub id: f64,
    /// How it reads.
    pub line: LineView,
    /// Whether it looks pending (the model decides: offline, or waiting noticeably long).
    pub pending: bool,
}

impl OutgoingView {
    fn of(o: &Outgoing, me: &Nick) -> OutgoingView {
        OutgoingView {
            id: num(o.id.0),
            line: LineView::of(&o.line, me),
            pending: o.looks_pending,
        }
    }
}

/// A desktop notification to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    /// The conversation it is in.
    pub key: String,
    /// Its title (`bob in #lobby`).
    pub title: String,
    /// Its body (what was said).
    pub body: String,
}

/// A change to the model, with what the page needs to apply it: `type` is the change's name in
/// lower camel case (`line`, `memberAdded`, ...), `key` the conversation it is about. Applied in
/// order they keep the page equal to the model; on `all` the page drops the changes still
/// queued and redraws everything from the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ChangeView {
    /// Redraw everything.
    All,
    /// The connection (read `conn()`).
    Conn,
    /// Our nick (read `me()`).
    Me,
    /// The conversation list (read `conversations()`).
    List,
    /// Another conversation is open.
    Current {
        /// Its key.
        key: String,
    },
    /// A conversation's counts.
    Counts {
        /// The conversation.
        key: String,
        /// Unread lines.
        unread: u32,
        /// Mentions and direct messages among them.
        mentions: u32,
    },
    /// A room's topic.
    Topic {
        /// The room.
        key: String,
        /// The topic, absent when none.
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// A member added at `index` of the sorted list.
    #[serde(rename_all = "camelCase")]
    MemberAdded {
        /// The room.
        key: String,
        /// Where.
        index: u32,
        /// Who.
        nick: String,
    },
    /// The member at `index` removed.
    MemberRemoved {
        /// The room.
        key: String,
        /// Where it was.
        index: u32,
    },
    /// A room's members replaced.
    Members {
        /// The room.
        key: String,
        /// The members, sorted.
        members: Vec<String>,
        /// How many members the room has (more than `members` holds in a big room).
        count: u32,
    },
    /// The member at `index` went away or came back (read `away(key, nick)`): redraw its row.
    MemberAway {
        /// The room.
        key: String,
        /// Where.
        index: u32,
        /// Who.
        nick: String,
    },
    /// A line appended.
    Line {
        /// The conversation.
        key: String,
        /// The line.
        line: LineView,
    },
    /// The oldest `n` lines dropped.
    Trimmed {
        /// The conversation.
        key: String,
        /// How many.
        n: u32,
    },
    /// The lines typed and not yet acknowledged, as they are now.
    Outgoing {
        /// The conversation.
        key: String,
        /// Its waiting lines, oldest first.
        lines: Vec<OutgoingView>,
    },
    /// Older lines put in front of a room's history: insert them, in order, right before the
    /// line with id `before` (at the end when absent).
    Prepended {
        /// The room.
        key: String,
        /// The line they go before.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<f64>,
        /// The lines, oldest first.
        lines: Vec<LineView>,
    },
    /// A line put before the line with id `before` (at the end when absent), not at the end:
    /// an event a join replays goes above the notice of the join. History: the log does not go
    /// to it, and a reader scrolled up stays where they read.
    Inserted {
        /// The room.
        key: String,
        /// The line it goes before.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<f64>,
        /// The line.
        line: LineView,
    },
    /// What the top of a room's log says about older lines.
    Scrollback {
        /// The room.
        key: String,
        /// Its state.
        scrollback: ScrollbackView,
    },
    /// The search changed (read `search_view()`).
    Search,
    /// The devices panel's list came (read `devices_view()`).
    Devices,
    /// A room's settings changed (read `policy(key)`; members' marks may have changed).
    Policy {
        /// The room.
        key: String,
    },
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl ChangeView {
    fn of(change: &Change, chat: &Chat) -> ChangeView {
        let conv = |id: &ConvId| chat.conv(id);
        match change {
            Change::All => ChangeView::All,
            Change::Conn => ChangeView::Conn,
            Change::Me => ChangeView::Me,
            Change::List => ChangeView::List,
            Change::Current => ChangeView::Current {
                key: chat.current().key(),
            },
            Change::Counts(id) => {
                let (unread, mentions) = conv(id).map_or((0, 0), |c| (c.unread(), c.mentions()));
                ChangeView::Counts {
                    key: id.key(),
                    unread,
                    mentions,
                }
            }
            Change::Topic(id) => ChangeView::Topic {
                key: id.key(),
                topic: conv(id).and_then(Conv::topic).map(ToString::to_string),
            },
            Change::MemberAdded {
                conv: id,
                index: i,
                nick,
            } => ChangeView::MemberAdded {
                key: id.key(),
                index: index(*i),
                nick: nick.to_string(),
            },
            Change::MemberRemoved { conv: id, index: i } => ChangeView::MemberRemoved {
                key: id.key(),
                index: index(*i),
            },
            Change::MemberAway {
                conv: id,
                index: i,
                nick,
            } => ChangeView::MemberAway {
                key: id.key(),
                index: index(*i),
                nick: nick.to_string(),
            },
            Change::Members(id) => ChangeView::Members {
                key: id.key(),
                members: conv(id)
                    .map(|c| c.members().iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
                count: conv(id).map_or(0, |c| u32::try_from(c.member_count()).unwrap_or(u32::MAX)),
            },
            Change::LineAdded { conv: id, id: line } => {
                match conv(id).and_then(|c| c.line(*line)) {
                    Some(l) => ChangeView::Line {
                        key: id.key(),
                        line: LineView::of(l, chat.me()),
                    },
                    // Already trimmed away by later lines (thousands arrived at once): the
                    // page redraws from the model as it is now.
                    None => ChangeView::All,
                }
            }
            Change::LinesTrimmed { conv: id, n } => ChangeView::Trimmed {
                key: id.key(),
                n: index(*n),
            },
            Change::Outgoing(id) => ChangeView::Outgoing {
                key: id.key(),
                lines: outgoing(id, chat),
            },
            // A join's replay, each of its lines put above the notice of the join: inserted
            // where it went. Redrawing everything (every log rebuilt at each join) lost where
            // a reader scrolled up in any room was.
            Change::LineInserted { conv: id, id: line } => {
                let at = conv(id).and_then(|c| {
                    let at = c.lines().iter().position(|l| l.id == *line)?;
                    Some((c, at))
                });
                match at {
                    // Before the next line the page has drawn: the changes come in the order
                    // lines were made, so one made later (a later line of the same replay) is
                    // not drawn yet, and goes in after this one.
                    Some((c, at)) => ChangeView::Inserted {
                        key: id.key(),
                        before: c
                            .lines()
                            .iter()
                            .skip(at + 1)
                            .find(|l| l.id < *line)
                            .map(|l| num(l.id.0)),
                        line: LineView::of(&c.lines()[at], chat.me()),
                    },
                    // Already trimmed away by later lines: redrawn from the model as it is.
                    None => ChangeView::All,
                }
            }
            Change::LinesPrepended { conv: id, first, n } => {
                let Some(c) = conv(id) else {
                    return ChangeView::All;
                };
                let Some(at) = c.lines().iter().position(|l| l.id == *first) else {
                    // Trimmed away meanwhile: redraw from the model as it is.
                    return ChangeView::All;
                };
                let lines: Vec<LineView> = c
                    .lines()
                    .iter()
                    .skip(at)
                    .take(*n)
                    .map(|l| LineView::of(l, chat.me()))
                    .collect();
                ChangeView::Prepended {
                    key: id.key(),
                    before: c.lines().get(at + n).map(|l| num(l.id.0)),
                    lines,
                }
            }
            Change::Scrollback(id) => match conv(id).and_then(ScrollbackView::of) {
                Some(scrollback) => ChangeView::Scrollback {
                    key: id.key(),
                    scrollback,
                },
                None => ChangeView::All,
            },
            Change::Search => ChangeView::Search,
            Change::Policy(id) => ChangeView::Policy { key: id.key() },
        }
    }
}

#[cfg(test)]
mod tests;
