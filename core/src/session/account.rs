//! The session's account: which account this connection is signed in to, the credentials kept
//! for signing in again by itself, and the account request waiting for its answer.
//!
//! A resumed welcome keeps the account (the server resumed the account's session). A welcome
//! that is not a resume (the server restarted past the resume window, the token expired) starts
//! a guest: the session signs in again with what it kept, the device key if it has one, else
//! the password it was given. Credentials live in memory only and go on sign-out or when the
//! server refuses them; a device key that stopped working falls back to the password once.

use crate::limits::LOST_REGISTRATION_CHECKS;
use crate::time::Millis;
use crate::types::{DeviceKey, Nick, Password};
use crate::wire::{ClientMsg, ErrorKind, Proof};

/// What the session keeps to sign in again.
#[derive(Debug, Clone)]
struct Creds {
    /// The account (for a registration not yet answered: the nick being registered).
    account: Nick,
    password: Option<Password>,
    key: Option<DeviceKey>,
    /// Ask the server for a device key when signing in with the password.
    remember: bool,
    /// Not registered yet: the next request is a registration.
    registering: bool,
    /// The server signed in with these once, or they are the session's own from the start
    /// ([`Account::keep`]): signing in again with them (after a welcome that is not a
    /// resume, or a drop before the answer) is the session's to do. Until then they are a request the person
    /// made, answered once: by the server, or given up when the link drops before the answer
    /// ([`Account::drop_unanswered`]); never asked again behind their back.
    taken: bool,
    /// A registration the person asked for whose answer a drop lost: the server may have made
    /// the account. Not registered again: the next welcome signs in with it instead, which
    /// finds out ([`Account::check_lost_registration`]).
    checking: bool,
}

impl Creds {
    /// The request that signs in with these: the key first, else the password.
    fn request(&self) -> Option<(ClientMsg, Ask)> {
        if self.registering {
            let password = self.password.clone()?;
            let msg = ClientMsg::Register {
                password,
                remember: self.remember,
            };
            return Some((msg, Ask::Register));
        }
        let (proof, remember, with_key) = match (&self.key, &self.password) {
            // The key is the remembering: no new key is asked for with it.
            (Some(key), _) => (Proof::Key(key.clone()), false, true),
            (None, Some(p)) => (Proof::Password(p.clone()), self.remember, false),
            (None, None) => return None,
        };
        let msg = ClientMsg::SignIn {
            account: self.account.clone(),
            proof,
            remember,
        };
        Some((msg, Ask::SignIn { with_key }))
    }
}

/// An account request sent and not answered yet.
#[derive(Debug, Clone)]
pub(super) enum Ask {
    /// A sign-in, with the device key or the password.
    SignIn {
        /// With the device key (if refused, the password is tried).
        with_key: bool,
    },
    /// A registration.
    Register,
    /// A password change; what to put back if it is refused.
    ChangePassword {
        old: Option<Password>,
        key: Option<DeviceKey>,
    },
}

/// What to do after the server refused an account request.
#[derive(Debug)]
pub(super) enum Refused {
    /// Nothing more: the user is told.
    Done,
    /// The server could not take it now (busy checking other passwords): asked again by
    /// itself at [`Account::retry_at`].
    Later,
    /// Try again with this (the key was refused; the password is kept).
    Retry(ClientMsg),
}

/// The session's account state. See the module docs.
#[derive(Debug, Default)]
pub(super) struct Account {
    creds: Option<Creds>,
    /// The account this connection is signed in to, as the server last said.
    signed_in: Option<Nick>,
    asking: Option<Ask>,
    /// The session is for the account only: a refused sign-in ends it (`natter --login`).
    required: bool,
    /// The server was busy: ask again then.
    retry_at: Option<Millis>,
    /// The wait after the last busy answer (zero: none yet); doubles up to [`RETRY_MAX`].
    retry_wait: Millis,
    /// The new password of a change asked before the sign-in was through, for the
    /// credentials once the server takes it (its answer, or the new key it gives this
    /// remembered device just before: [`Account::rekeyed`]).
    later_password: Option<Password>,
    /// A password sign-in given up at a drop ([`Account::drop_unanswered`]), until the next
    /// welcome: a resumed one may show that the server took it after all.
    given_up: Option<Creds>,
    /// How many times the check of a lost registration ([`Account::check_lost_registration`])
    /// was lost in a drop too ([`Account::keep_lost_check`]).
    checks_lost: u32,
}

/// What became of the check of a lost registration when the link dropped before its answer
/// ([`Account::keep_lost_check`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LostCheck {
    /// Asked again at the next welcome.
    Kept(Nick),
    /// Lost [`LOST_REGISTRATION_CHECKS`] times: given up, the password forgotten.
    GivenUp(Nick),
}

/// The first wait before asking a busy server again, and the longest.
const RETRY_FIRST: Millis = Millis(1_000);
const RETRY_MAX: Millis = Millis(30_000);

impl Account {
    /// The account this connection is signed in to.
    pub(super) fn signed_in(&self) -> Option<&Nick> {
        self.signed_in.as_ref()
    }

    /// The account a request sent and not answered yet is for (a registration's: the nick
    /// being registered).
    pub(super) fn asked_for(&self) -> Option<&Nick> {
        self.asking.as_ref()?;
        self.creds.as_ref().map(|c| &c.account)
    }

    /// The device key kept, if any.
    pub(super) fn key(&self) -> Option<&DeviceKey> {
        self.creds.as_ref().and_then(|c| c.key.as_ref())
    }

    /// Makes signing in a condition of the session (until signed out).
    pub(super) fn require(&mut self) {
        self.required = true;
    }

    /// The credentials kept are the session's own from the start, as a configured client's
    /// (`natter --login`): signing in with them again at a later welcome is the session's to
    /// do, as after they went through, so a link lost before their answer does not give them
    /// up ([`Account::drop_unanswered`]). Credentials asked for later are the person's again.
    pub(super) fn keep(&mut self) {
        if let Some(creds) = self.creds.as_mut() {
            creds.taken = true;
        }
    }

    /// Signing in is a condition of the session ([`Account::require`]).
    pub(super) fn is_required(&self) -> bool {
        self.required
    }

    /// Signing in is required, and the account's credentials were refused for good (nothing
    /// signed in, nothing asked, nothing left to try).
    pub(super) fn required_and_refused(&self) -> bool {
        self.required
            && self.signed_in.is_none()
            && self.asking.is_none()
            && self.retry_at.is_none()
    }

    /// Signing in is required and not done yet: messages wait (they are never said as a
    /// guest); a refusal ends the session with them unsent.
    pub(super) fn holds_messages(&self) -> bool {
        self.required && self.signed_in.is_none()
    }

    /// The request waiting for its answer is a registration.
    pub(super) fn is_registering(&self) -> bool {
        matches!(self.asking, Some(Ask::Register))
    }

    /// The request waiting for its answer is a sign-in with the device key.
    pub(super) fn is_signing_in_with_key(&self) -> bool {
        matches!(self.asking, Some(Ask::SignIn { with_key: true }))
    }

    /// An account request is waiting for its answer.
    pub(super) fn is_asking(&self) -> bool {
        self.asking.is_some()
    }

    /// Keeps what signs in to `account`; returns the request to send (when welcomed).
    pub(super) fn sign_in(
        &mut self,
        account: Nick,
        proof: Proof,
        remember: bool,
    ) -> Option<ClientMsg> {
        let (password, key) = match proof {
            Proof::Password(p) => (Some(p), None),
            Proof::Key(k) => (None, Some(k)),
        };
        self.given_up = None;
        self.creds = Some(Creds {
            account,
            password,
            key,
            remember,
            registering: false,
            taken: false,
            checking: false,
        });
        self.request()
    }

    /// Keeps what signs in to `account` with a device key kept from an earlier sign-in, and
    /// `password` to fall back to (once) if the server refuses the key; `remember` asks for a
    /// new key with that password. Returns the request to send (when welcomed).
    pub(super) fn sign_in_with_key(
        &mut self,
        account: Nick,
        key: DeviceKey,
        password: Option<Password>,
        remember: bool,
    ) -> Option<ClientMsg> {
        self.given_up = None;
        self.creds = Some(Creds {
            account,
            password,
            key: Some(key),
            remember,
            registering: false,
            taken: false,
            checking: false,
        });
        self.request()
    }

    /// Keeps what registers `nick` (the connection's) with `password`; returns the request.
    pub(super) fn register(
        &mut self,
        nick: Nick,
        password: Password,
        remember: bool,
    ) -> Option<ClientMsg> {
        self.given_up = None;
        self.creds = Some(Creds {
            account: nick,
            password: Some(password),
            key: None,
            remember,
            registering: true,
            taken: false,
            checking: false,
        });
        self.request()
    }

    /// The request that signs in with what is kept, marked as asked.
    pub(super) fn request(&mut self) -> Option<ClientMsg> {
        let (msg, ask) = self.creds.as_ref()?.request()?;
        self.asking = Some(ask);
        Some(msg)
    }

    /// Signing out: everything kept is forgotten.
    pub(super) fn sign_out(&mut self) {
        *self = Account::default();
    }

    /// A password change is on its way: the new password is kept (the server revokes every
    /// device key), the old one too until the answer. Not signed in yet (a `/login` waiting
    /// for its answer, or for the reconnect a `/logout` makes), the credentials are the
    /// sign-in's and the request asked is the sign-in: neither is this change's. The server
    /// answers it once the sign-in is through (or says we are not signed in); the new password
    /// is kept only if it takes it ([`Account::password_changed`]).
    pub(super) fn change_password(&mut self, new: &Password) {
        if self.signed_in.is_none() {
            self.later_password = Some(new.clone());
            return;
        }
        self.later_password = None;
        let Some(creds) = self.creds.as_mut() else {
            // Signed in without this session's credentials (a resume): nothing to update.
            self.asking = Some(Ask::ChangePassword {
                old: None,
                key: None,
            });
            return;
        };
        let old = creds.password.replace(new.clone());
        let key = creds.key.take();
        self.asking = Some(Ask::ChangePassword { old, key });
    }

    /// A welcome: a resume keeps the account; otherwise the connection is a guest's. Returns
    /// the sign-in to send, if credentials are kept and the connection is not signed in.
    ///
    /// A sign-in given up at the drop may have reached the server, its answer lost: a resumed
    /// session that now has the account's nick (`nick_was` before, `nick_now` now) is the
    /// account's, so it is asked again, and the server, which has it signed in already, says
    /// so (granting nothing more): the session does not take itself for a guest while the
    /// server has it as the account. (Signing in to an account of the nick one has, this
    /// cannot be told: it stays given up, and the person's next sign-in is told it is done.)
    pub(super) fn welcomed(
        &mut self,
        resumed: bool,
        nick_was: &Nick,
        nick_now: &Nick,
    ) -> Option<ClientMsg> {
        if let Some(creds) = self.given_up.take()
            && resumed
            && creds.account.folded() == nick_now.folded()
            && nick_was.folded() != nick_now.folded()
        {
            self.creds = Some(creds);
        }
        // What was asked on the last link was not answered there. (A password change's new
        // password stays: if the server never took it, the sign-in with it is refused and says
        // so.)
        self.asking = None;
        self.retry_at = None;
        if !resumed {
            self.signed_in = None;
        }
        if self.signed_in.is_some() {
            return None;
        }
        self.request()
    }

    /// The server says we are signed in to `account`; a fresh key replaces the kept one.
    /// Returns whether that answers the check of a registration whose answer a drop lost
    /// ([`Account::check_lost_registration`]): it went through.
    pub(super) fn signed_in_as(&mut self, account: &Nick, key: Option<&DeviceKey>) -> bool {
        self.signed_in = Some(account.clone());
        self.asking = None;
        self.retry_at = None;
        self.retry_wait = Millis::ZERO;
        let mut checked = false;
        if let Some(creds) = self.creds.as_mut() {
            checked = creds.checking;
            creds.checking = false;
            creds.account = account.clone();
            creds.registering = false;
            creds.taken = true;
            if let Some(key) = key {
                creds.key = Some(key.clone());
            }
        }
        checked
    }

    /// The sign-in waiting for its answer checks a registration whose answer a drop lost: the
    /// account it registered, if so.
    pub(super) fn checking_registration(&self) -> Option<&Nick> {
        self.asking.as_ref()?;
        self.creds
            .as_ref()
            .filter(|c| c.checking)
            .map(|c| &c.account)
    }

    /// The account a registration whose answer a drop lost is being checked for
    /// ([`Account::check_lost_registration`]): from the drop until the check's answer (asked,
    /// or to ask at the next welcome).
    pub(super) fn lost_registration(&self) -> Option<&Nick> {
        self.creds
            .as_ref()
            .filter(|c| c.checking)
            .map(|c| &c.account)
    }

    /// The link was lost while a registration the person asked for waited for its answer: the
    /// server may have made the account, or not. Registering again could make a second
    /// attempt of what went through (refused as taken, while it is theirs); leaving it, the
    /// client stayed a guest while the server had made the account. Kept instead as a sign-in
    /// with the same name and password, which the next welcome sends: `SignedIn` says it went
    /// through, `SignInFailed` that it did not. The password goes nowhere the person did not
    /// send it: to the same server, for the account they asked to become. Returns the account,
    /// for the person to be told; `None` when no registration was waiting for its answer.
    pub(super) fn check_lost_registration(&mut self) -> Option<Nick> {
        if !matches!(self.asking, Some(Ask::Register)) {
            return None;
        }
        let creds = self.creds.as_mut()?;
        if creds.taken || creds.password.is_none() {
            return None;
        }
        creds.registering = false;
        creds.checking = true;
        self.checks_lost = 0;
        self.asking = None;
        self.retry_at = None;
        self.retry_wait = Millis::ZERO;
        Some(creds.account.clone())
    }

    /// The link was lost while the sign-in that checks a registration whose answer a drop lost
    /// ([`Account::check_lost_registration`]) waited for its answer (sent, or waiting to ask a
    /// busy server again): the question is still open. Given up, it was said as `could not
    /// sign in` to someone who asked to register, and the account the server may have made
    /// was left unknown. Kept instead: the next welcome asks again, up to
    /// [`LOST_REGISTRATION_CHECKS`] times in all; then given up (a link that drops each time
    /// it is asked sent the password at every welcome, with no end), the credentials
    /// forgotten. Returns which, with the account, for the person to be told; `None` when no
    /// such check was waiting.
    pub(super) fn keep_lost_check(&mut self) -> Option<LostCheck> {
        let waiting = match self.asking {
            Some(Ask::SignIn { with_key: false }) => true,
            None => self.retry_at.is_some(),
            Some(_) => false,
        };
        let creds = self.creds.as_ref()?;
        if !waiting || !creds.checking || creds.taken || creds.password.is_none() {
            return None;
        }
        let account = creds.account.clone();
        self.asking = None;
        self.retry_at = None;
        self.retry_wait = Millis::ZERO;
        self.checks_lost += 1;
        if self.checks_lost >= LOST_REGISTRATION_CHECKS {
            self.creds = None;
            return Some(LostCheck::GivenUp(account));
        }
        Some(LostCheck::Kept(account))
    }

    /// When to ask a busy server again, if it was.
    pub(super) fn retry_at(&self) -> Option<Millis> {
        self.retry_at
    }

    /// At `now`, the request to ask a busy server again, if it is time.
    pub(super) fn retry_due(&mut self, now: Millis) -> Option<ClientMsg> {
        if self.retry_at.is_none_or(|at| at > now) {
            return None;
        }
        self.retry_at = None;
        if self.signed_in.is_some() || self.asking.is_some() {
            return None;
        }
        self.request()
    }

    /// Whether an error of `kind` that names nothing answers an account request: the account
    /// kinds always do, and while one is asked, the kinds it may be refused with.
    pub(super) fn answers(&self, kind: ErrorKind) -> bool {
        match kind {
            ErrorKind::SignInFailed
            | ErrorKind::Throttled
            | ErrorKind::RegistrationClosed
            | ErrorKind::NotSignedIn => true,
            // Flood: a request refused as one too many at once is refused all the same.
            ErrorKind::Invalid
            | ErrorKind::NickTaken
            | ErrorKind::Unavailable
            | ErrorKind::Flood => self.asking.is_some(),
            _ => false,
        }
    }

    /// Whether an error of `kind` naming `nick` answers an account request: a sign-in refused
    /// or throttled, or a registration of that nick refused (taken, a guest's nick).
    pub(super) fn answers_about(&self, kind: ErrorKind, nick: &Nick) -> bool {
        match kind {
            ErrorKind::SignInFailed | ErrorKind::Throttled | ErrorKind::RegistrationClosed => true,
            // `Unavailable` naming the nick: a registration the server could not store.
            ErrorKind::NickTaken | ErrorKind::Invalid | ErrorKind::Unavailable => {
                matches!(self.asking, Some(Ask::Register))
                    && self
                        .creds
                        .as_ref()
                        .is_some_and(|c| c.account.folded() == nick.folded())
            }
            _ => false,
        }
    }

    /// The link was lost: a sign-in with a password, or a registration, that the server never
    /// answered (sent, or waiting to ask a busy server again) and that never went through is
    /// given up, its credentials forgotten; the name of what was given up (`sign in`,
    /// `register`) is returned, for the person to be told, and to ask again if they choose.
    /// Kept, it waited for the server to come back and then went through by itself, long after
    /// the person gave up on it. A sign-in with a device key (no one typed it: a remembered
    /// sign-in) and credentials that went through before are kept: the next welcome signs in
    /// with them.
    pub(super) fn drop_unanswered(&mut self) -> Option<&'static str> {
        let creds = self.creds.as_ref()?;
        if creds.taken {
            return None;
        }
        let what = match (&self.asking, self.retry_at) {
            (Some(Ask::Register), _) => "register",
            (Some(Ask::SignIn { with_key: false }), _) => "sign in",
            (None, Some(_)) if creds.registering => "register",
            (None, Some(_)) if creds.key.is_none() => "sign in",
            _ => return None,
        };
        self.given_up = self.creds.take().filter(|c| !c.registering);
        self.asking = None;
        self.retry_at = None;
        self.retry_wait = Millis::ZERO;
        Some(what)
    }

    /// A password change typed earlier has not been answered yet: asked while signed in, or
    /// before the sign-in was through. A second one is refused meanwhile
    /// ([`Account::change_password`] keeps one change's new password and restores one change's
    /// key on a refusal: two at once mixed the last password with the first change's key).
    pub(super) fn change_in_flight(&self) -> bool {
        self.is_changing_password() || self.later_password.is_some()
    }

    /// The link dropped with the password change sent and not answered: its answer will not
    /// come (a resumed session is not told it either), so it is no longer in flight, and a new
    /// `/password` may be typed. Whether the server took it is not known: the credentials stay
    /// as they are, but for the device's key, given back: still good if the change did not
    /// arrive, it is tried first, and if the change did, its refusal falls back to the new
    /// password, once. (Until the forty-third session's review the key was dropped: a change
    /// lost before it arrived left only the new password, refused, and the device signed out.)
    pub(super) fn change_lost(&mut self) {
        self.later_password = None;
        if let Some(Ask::ChangePassword { key, .. }) = self
            .asking
            .take_if(|a| matches!(a, Ask::ChangePassword { .. }))
            && let Some(creds) = self.creds.as_mut()
            && creds.key.is_none()
        {
            creds.key = key;
        }
    }

    /// A password change is waiting for its answer.
    pub(super) fn is_changing_password(&self) -> bool {
        matches!(self.asking, Some(Ask::ChangePassword { .. }))
    }

    /// A `SignedIn` to `account` with a key now is a password change's new key for this
    /// remembered device, not a sign-in: one is asked and waits for its answer, or one asked
    /// before the sign-in was through waits for it, that sign-in to `account` being through.
    /// (Until the forty-first session the second was taken for a sign-in, and the change's
    /// answer then dropped the new key with the revoked one: the device was no longer
    /// remembered, and the page kept the revoked key for its next load.)
    pub(super) fn rekeys(&self, account: &Nick) -> bool {
        self.is_changing_password()
            || (self.later_password.is_some()
                && self.asking.is_none()
                && self
                    .signed_in
                    .as_ref()
                    .is_some_and(|a| a.folded() == account.folded()))
    }

    /// The server gave this device a new key in place of the one a password change revoked
    /// (it was remembered, and stays so).
    ///
    /// For a change asked before the sign-in was through, the key's coming says it went
    /// through (the server stores the new password before it issues the key, and answers right
    /// after): the new key and password are the credentials at once, as its answer would make
    /// them. Kept aside until the answer, the revoked key stayed `device_key()`, which the page
    /// stores: a drop that lost the answer then signed in with the revoked key, and so did the
    /// page reloaded meanwhile (until the forty-second session's review); the device was no
    /// longer remembered.
    pub(super) fn rekeyed(&mut self, key: DeviceKey) {
        let new_password = if self.is_changing_password() {
            None
        } else {
            self.later_password.take()
        };
        if self.creds.is_none()
            && let Some(account) = self.signed_in.clone()
        {
            // Signed in by a resume, without credentials of this session's: the key is one.
            self.creds = Some(Creds {
                account,
                password: None,
                key: None,
                remember: true,
                registering: false,
                taken: true,
                checking: false,
            });
        }
        if let Some(creds) = self.creds.as_mut() {
            creds.key = Some(key);
            if new_password.is_some() {
                creds.password = new_password;
            }
        }
    }

    /// The server took a password change. Returns whether this device stays remembered (it
    /// holds the new key the server gave with the answer).
    pub(super) fn password_changed(&mut self) -> bool {
        if let Some(Ask::ChangePassword { .. }) = self.asking {
            self.asking = None;
        } else if let Some(new) = self.later_password.take()
            && let Some(creds) = self.creds.as_mut()
        {
            // Asked before the sign-in was through, and no new key came before the answer:
            // the device was not remembered, and the key it signed in with is revoked.
            creds.password = Some(new);
            creds.key = None;
        }
        self.key().is_some()
    }

    /// The server refused the account request asked (kind `kind`; `named`: the refusal names
    /// a nick, not the connection).
    pub(super) fn refused(&mut self, kind: ErrorKind, named: bool, now: Millis) -> Refused {
        let asked = self.asking.take();
        if asked.is_none() {
            // Nothing asked: the refusal of a change asked before the sign-in was through.
            self.later_password = None;
        }
        match (asked, kind) {
            // The key was revoked (signed out elsewhere, password changed): the password, once.
            (Some(Ask::SignIn { with_key: true }), ErrorKind::SignInFailed) => {
                let Some(creds) = self.creds.as_mut() else {
                    return Refused::Done;
                };
                creds.key = None;
                if creds.password.is_none() {
                    self.creds = None;
                    return Refused::Done;
                }
                match self.request() {
                    Some(msg) => Refused::Retry(msg),
                    None => Refused::Done,
                }
            }
            // A registration the server could not store (`Unavailable` naming the nick: its
            // disk is full) was not made, and is not a busy server's answer: refused as any
            // registration. Asked again by itself, it would register whatever nick the
            // connection had by then, behind the back of a person told it was not made.
            (Some(Ask::Register), ErrorKind::Unavailable) if named => {
                self.creds = None;
                Refused::Done
            }
            // Wrong credentials, or a registration refused: forget them. A throttled one too:
            // asked again by itself at a later welcome, it would register the nick the
            // connection has then, which may not be the one asked for.
            (Some(Ask::SignIn { .. }), ErrorKind::SignInFailed)
            | (
                Some(Ask::Register),
                ErrorKind::RegistrationClosed
                | ErrorKind::NickTaken
                | ErrorKind::Invalid
                | ErrorKind::Throttled
                | ErrorKind::Flood,
            ) => {
                self.creds = None;
                Refused::Done
            }
            // A password sign-in throttled (the server says wait) or refused as too fast, that
            // never went through: forgotten too. Kept, it was sent again by itself at the next
            // welcome that was not a resume, signing the person in behind their back long after
            // they were told it failed. They ask again when they choose. (One that went
            // through before, signing in again after a restart, is kept: the session's own.)
            (Some(Ask::SignIn { with_key: false }), ErrorKind::Throttled | ErrorKind::Flood)
                if !self.creds.as_ref().is_some_and(|c| c.taken) =>
            {
                self.creds = None;
                Refused::Done
            }
            (Some(Ask::ChangePassword { old, key }), _) => {
                if let Some(creds) = self.creds.as_mut() {
                    if old.is_some() {
                        creds.password = old;
                    }
                    if key.is_some() {
                        creds.key = key;
                    }
                }
                Refused::Done
            }
            // The server is busy checking other passwords (a crowd signing in after a
            // restart): asked again by itself, a little later each time.
            (Some(Ask::SignIn { .. } | Ask::Register), ErrorKind::Unavailable)
                if self.creds.is_some() =>
            {
                self.retry_wait = if self.retry_wait == Millis::ZERO {
                    RETRY_FIRST
                } else {
                    (self.retry_wait + self.retry_wait).min(RETRY_MAX)
                };
                self.retry_at = Some(now + self.retry_wait);
                Refused::Later
            }
            // Credentials that went through before, throttled or refused as too fast when
            // signing in again after a restart (a cluster node that sent this device away says
            // `Throttled`): kept, tried again at the next welcome (or by the user).
            _ => Refused::Done,
        }
    }
}
