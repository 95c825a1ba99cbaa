//! Accounts: registering a nick, signing in from any connection (several at once), device
//! keys, read markers, and throttling of failed attempts.

use super::Hub;
use crate::time::Millis;
use crate::types::{ConnId, Nick, Password, RoomName, Seq};
use crate::wire::{ErrorKind, Proof, Re};

impl Hub {
    pub(super) fn sign_in(
        &mut self,
        conn: ConnId,
        _account: Nick,
        _proof: Proof,
        _remember: bool,
        _now: Millis,
    ) {
        self.error(
            conn,
            ErrorKind::Unavailable,
            Re::Conn,
            "accounts are coming".into(),
        );
    }

    pub(super) fn register(
        &mut self,
        conn: ConnId,
        _password: Password,
        _remember: bool,
        _now: Millis,
    ) {
        self.error(
            conn,
            ErrorKind::Unavailable,
            Re::Conn,
            "accounts are coming".into(),
        );
    }

    pub(super) fn sign_out(&mut self, conn: ConnId, _now: Millis) {
        self.error(
            conn,
            ErrorKind::Unavailable,
            Re::Conn,
            "accounts are coming".into(),
        );
    }

    pub(super) fn change_password(
        &mut self,
        conn: ConnId,
        _old: Password,
        _new: Password,
        _now: Millis,
    ) {
        self.error(
            conn,
            ErrorKind::Unavailable,
            Re::Conn,
            "accounts are coming".into(),
        );
    }

    pub(super) fn read_marker(&mut self, _conn: ConnId, _room: RoomName, _seq: Seq) {}
}
