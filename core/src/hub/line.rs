//! Lines a dialect reads when they run ([`Request::Line`]): one line of input, one flood-control
//! token, and what it means decided only once everything before it has run (IRC: a `NICK` after
//! a refused registration registers again; after a welcome it is a nick change). The dialect is
//! told when the line's steps are done, so it can close its answer (IRC's labeled-response),
//! and whether part of that answer comes later (in a cluster: `Hub::late_answer`).

use super::Hub;
use super::dialect::{Reply, Request, Step};
use crate::time::Millis;
use crate::types::ConnId;

impl Hub {
    /// Reads `line` in `conn`'s dialect and runs the steps it means, in order.
    pub(super) fn run_line(&mut self, conn: ConnId, line: &str, now: Millis) {
        // In a cluster, a line after the registration that waits for its nick claim waits
        // too, and is read once the claim is answered (registered, or refused: then read as
        // a single node reads it after a refusal), not now as if the registration had failed
        // (IRC's `JOIN` sent with `NICK` and `USER` would be answered 451).
        if self.conns.get(&conn).is_some_and(|c| c.user().is_none())
            && self.cluster_holds(conn, Request::Line(line.to_owned()))
        {
            return;
        }
        let next_id = self.next_id(conn);
        let Hub { conns, users, .. } = self;
        let Some(c) = conns.get_mut(&conn) else {
            return;
        };
        let me = c.user().and_then(|u| users.get(&u)).map(|u| &u.nick);
        let before = c.backlog_bytes();
        let mut steps = Vec::new();
        match c.dialect_mut() {
            Some(d) => d.read(line, me, next_id, &mut steps),
            None => return,
        }
        for step in steps {
            if self.conns.get(&conn).is_none_or(|c| c.closing()) {
                return;
            }
            match step {
                // The line paid its token: what it means runs now.
                Step::Request(Request::Line(_)) => {
                    debug_assert!(false, "a line read into another line");
                }
                // In a cluster, what follows a registration waits for its nick claim (IRC's
                // LUSERS and MOTD after NICK/USER).
                Step::Request(r)
                    if self.conns.get(&conn).is_some_and(|c| c.user().is_none())
                        && self.cluster_holds(conn, r.clone()) => {}
                Step::Request(r) => self.run(conn, r, now),
                step => self.step(conn, step, now),
            }
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() {
            return;
        }
        // Nothing is written back during a run, so the backlog only grows with what was queued.
        let answered = c.backlog_bytes() > before;
        // In a cluster a join or a nick change is answered after its line (the cluster decides).
        let later = self.cluster_answers_later(conn);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(end) = c.dialect_mut().and_then(|d| d.read_done(answered, later)) {
            self.reply(conn, Reply::Own(end));
        }
    }
}
