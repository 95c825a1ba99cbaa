//! A connection's way in: admission at accept, the dialect decided (by the door, the first
//! byte, or silence), its bytes turned into steps, the handshake (a bridge's `Forwarded`, the
//! hello or the greeting of a person), and the handshake and keepalive deadlines.

use super::accounts::REGISTERED;
use super::conn::Life;
use super::dialect::{self, Door, Hello, IfTaken, Limit, Reply, Request, Step};
use super::reply::Gone;
use super::{Conn, ConnKind, DeviceId, Hub, HubEvent, Refused, Timer, UserId, admit};
use crate::limits::MAX_REFUSED_PENDING;
use crate::render::count;
use crate::time::Millis;
use crate::types::{ConnId, Nick, ResumeToken};
use crate::wire::{ClientMsg, ErrorKind, PROTOCOL_VERSION, Re, ServerMsg};
use core::net::IpAddr;
use tracing::{debug, info};

impl Hub {
    /// Admission: the hard limits refuse outright; soft limits (per address, connect rate,
    /// server full) are answered in the client's dialect once it is known.
    pub(super) fn admit(
        &mut self,
        door: Door,
        peer: IpAddr,
        now: Millis,
        attempt_counted: bool,
    ) -> Result<ConnId, Refused> {
        if self.shut
            || self.refused_pending >= MAX_REFUSED_PENDING
            || self.conns.len() >= self.config.max_connections + MAX_REFUSED_PENDING
        {
            self.stats.refused(None);
            return Err(Refused::Overloaded);
        }
        // The slot it will have, and the next number: both always there below the limits
        // above (16 million connections at once, 10^12 over the hub's life).
        let Some(id) = self
            .conns
            .next_slot()
            .and_then(|slot| ConnId::new(self.next_conn, slot))
        else {
            self.stats.refused(None);
            return Err(Refused::Overloaded);
        };
        self.next_conn += 1;
        let peer = peer.to_canonical();
        let mut conn = Conn::new(id, peer, door, self.config.flood_burst, now);
        // Only a TLS listener's connections are counted before they are accepted.
        conn.secure = attempt_counted;
        let admitted = self.conns.len() - self.refused_pending;
        let verdict = if admitted >= self.config.max_connections {
            Err(admit::Refusal {
                limit: Limit::Connections,
                detail: "the server is full, try again later".into(),
            })
        } else if admit::IpTable::exempt(&self.config, peer)
            || self.config.trusted_proxies.contains(&peer)
        {
            // A bridge carries many people: they are counted by their own address once it
            // sends `Forwarded`, not against the bridge's.
            Ok(None)
        } else if attempt_counted {
            self.ips
                .admit_counted(&self.config, peer, now)
                .map(|()| Some(peer))
        } else {
            self.ips.admit(&self.config, peer, now).map(|()| Some(peer))
        };
        match verdict {
            Ok(counted) => conn.set_counted_ip(counted),
            Err(r) => {
                self.stats.refused(Some(r.limit));
                debug!(conn = %id, %peer, limit = %r.limit, "refused at accept");
                self.refused_pending += 1;
                let said = self.refusals_said.say(r.limit, now);
                conn.refused_at_admission(&mut self.out, r.limit, r.detail, said);
            }
        }
        debug!(conn = %id, %peer, "accepted");
        let proxied = self.config.trusted_proxies.contains(&peer);
        if proxied {
            conn.life = Life::Proxy;
        }
        self.attach_gen += 1;
        if !self.conns.insert(conn) {
            // Cannot happen: the id names the slot offered.
            return Err(Refused::Overloaded);
        }
        if proxied {
            self.timers
                .set(Timer::Detect(id), now + self.config.text_detect_wait);
        } else {
            self.after_proxy(id, now);
        }
        self.timers
            .set(Timer::Hello(id), now + self.config.hello_timeout);
        if self.ips.len() > 0 && !self.timers.is_set(Timer::PruneIps) {
            self.timers
                .set(Timer::PruneIps, now + self.config.connect_window);
        }
        self.dialect_known(id, now);
        Ok(id)
    }

    /// Past a PROXY header (or with none): the door's own dialect, or detection by first byte.
    fn after_proxy(&mut self, conn: ConnId, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match dialect::at_accept(c.door, &self.config.irc_server_name) {
            Some(d) => c.life = Life::Handshake(d),
            None => {
                c.life = Life::Detect;
                self.timers
                    .set(Timer::Detect(conn), now + self.config.text_detect_wait);
            }
        }
    }

    /// A trusted proxy's connection: reads a PROXY header if one comes first, counts the client
    /// it names, and returns the bytes after it (all of them if there is no header). `None`:
    /// the header is not whole yet, or was bad and the connection is closing.
    fn proxy_header(&mut self, conn: ConnId, data: &[u8], now: Millis) -> Option<Vec<u8>> {
        use crate::proxy::{Parsed, parse};
        let c = self.conns.get_mut(&conn)?;
        let mut buf = core::mem::take(&mut c.rare_mut().proxy_header);
        buf.extend_from_slice(data);
        match parse(&buf) {
            Ok(Parsed::Partial) => {
                c.rare_mut().proxy_header = buf;
                None
            }
            Ok(Parsed::NotProxy) => {
                self.attach_gen += 1;
                self.after_proxy(conn, now);
                Some(buf)
            }
            Ok(Parsed::Header { len, source }) => {
                self.attach_gen += 1;
                self.after_proxy(conn, now);
                debug!(conn = %conn, ?source, "PROXY header");
                if let Some(ip) = source {
                    self.count_client(conn, ip, now);
                }
                Some(buf.split_off(len))
            }
            Err(e) => {
                debug!(conn = %conn, error = %e, "bad PROXY header");
                self.close_conn(conn, e.to_string(), Gone::Closed, now);
                None
            }
        }
    }

    /// A trusted proxy or bridge named the client behind `conn`: the per-address limits count
    /// that address from now on. A refusal is told once the dialect is known.
    fn count_client(&mut self, conn: ConnId, ip: IpAddr, now: Millis) {
        // `::ffff:1.2.3.4` and `1.2.3.4` are one address for the per-IP limits.
        let ip = ip.to_canonical();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(old) = c.counted_ip() {
            c.set_counted_ip(None);
            self.ips.release(&self.config, old, now);
        }
        if !admit::IpTable::exempt(&self.config, ip) {
            match self.ips.admit(&self.config, ip, now) {
                Ok(()) => c.set_counted_ip(Some(ip)),
                Err(r) => {
                    self.stats.refused(Some(r.limit));
                    if c.refused().is_none() {
                        self.refused_pending += 1;
                    }
                    let said = self.refusals_said.say(r.limit, now);
                    c.refused_at_admission(&mut self.out, r.limit, r.detail, said);
                }
            }
        }
        if !self.timers.is_set(Timer::PruneIps) {
            self.timers
                .set(Timer::PruneIps, now + self.config.connect_window);
        }
    }

    /// Bytes in: the first decides the dialect where the door serves several; then the dialect
    /// turns them into steps, taken in order until one closes the connection.
    pub(super) fn feed(&mut self, conn: ConnId, data: &[u8], now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() || data.is_empty() {
            return;
        }
        c.last_rx = now;
        c.set_ping(None);
        if let Some(did) = c.device()
            && let Some(d) = self.devices.get(&did)
        {
            let (probed, unconfirmed) = (d.probe().is_some(), d.prev_resume().is_some());
            if probed {
                self.probe_heard(did);
            }
            if unconfirmed {
                self.token_received(did);
            }
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if matches!(c.life, Life::Proxy) {
            if let Some(rest) = self.proxy_header(conn, data, now)
                && !rest.is_empty()
            {
                self.feed(conn, &rest, now);
            }
            return;
        }
        if matches!(c.life, Life::Detect) {
            let untrusted_proxy = data.starts_with(&crate::proxy::V2_SIGNATURE);
            c.life = Life::Handshake(dialect::detect(
                c.door,
                data[0],
                &self.config.irc_server_name,
            ));
            if !self.dialect_known(conn, now) {
                return;
            }
            if untrusted_proxy {
                let detail = "a PROXY header is only taken from a trusted proxy".to_string();
                self.fatal(conn, ErrorKind::Protocol, detail, now);
                return;
            }
        }
        let mut steps = core::mem::take(&mut self.steps);
        if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
            d.feed(data, &mut steps);
        }
        self.run_steps(conn, steps, now);
    }

    /// The peer shut its side: see [`Hub::handle_eof`](super::Hub::handle_eof). False when the
    /// dialect ends nothing politely (the caller closes the connection).
    pub(super) fn eof(&mut self, conn: ConnId, now: Millis) -> bool {
        let mut steps = core::mem::take(&mut self.steps);
        let end = self
            .conns
            .get_mut(&conn)
            .filter(|c| !c.closing())
            .and_then(|c| c.dialect_mut())
            .and_then(|d| d.on_eof(&mut steps));
        let Some(end) = end else {
            steps.clear();
            self.steps = steps;
            return false;
        };
        self.run_steps(conn, steps, now);
        if self.conns.get(&conn).is_some_and(|c| !c.closing()) {
            self.submit_last(conn, end, now);
        }
        true
    }

    /// A dialect's steps, taken in order until one closes the connection; `steps` (emptied) is
    /// kept for the next read.
    fn run_steps(&mut self, conn: ConnId, mut steps: Vec<Step>, now: Millis) {
        // A read's says and actions are delivered together (see `Hub::broadcast`): whatever
        // else a step does comes after the events before it.
        let may_defer = self.cluster.is_none();
        for step in steps.drain(..) {
            if self.conns.get(&conn).is_none_or(|c| c.closing()) {
                break;
            }
            let defer = may_defer && says(&step);
            if !defer {
                self.flush_fanout();
            }
            self.deferring = defer;
            self.step(conn, step, now);
            self.deferring = false;
        }
        self.flush_fanout();
        self.steps = steps;
    }

    /// The dialect has just become known: a connection refused at admission is told now, in
    /// its words, and closed. False if it was.
    fn dialect_known(&mut self, conn: ConnId, now: Millis) -> bool {
        let refused = self.conns.get(&conn).and_then(|c| {
            c.dialect()?;
            c.refused().cloned()
        });
        match refused {
            Some(detail) => {
                self.fatal(conn, ErrorKind::Full, detail, now);
                false
            }
            None => true,
        }
    }

    /// The detection wait is over: a connection that sent nothing gets the dialect of silence,
    /// and a dialect that greets people who have not finished a line greets them now.
    pub(super) fn detect_wait_over(&mut self, conn: ConnId, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if matches!(c.life, Life::Proxy) && c.rare().is_none_or(|r| r.proxy_header.is_empty()) {
            // A trusted proxy's client that has said nothing at all: detected as anyone's.
            c.life = Life::Detect;
        }
        if matches!(c.life, Life::Detect) {
            c.life = Life::Handshake(dialect::on_silence(c.door, &self.config.irc_server_name));
            if !self.dialect_known(conn, now) {
                return;
            }
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !matches!(c.life, Life::Handshake(_)) {
            return;
        }
        if let Some(step) = c.dialect_mut().and_then(|d| d.on_wait()) {
            self.step(conn, step, now);
        }
    }

    /// One step of a connection's input.
    pub(super) fn step(&mut self, conn: ConnId, step: Step, now: Millis) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ready = c.user().is_some();
        let socket_ip = c.socket_ip;
        match step {
            Step::Pong(None) => {}
            Step::PongTo(token) => self.pong_to(conn, token, now),
            Step::Pong(Some(answer)) => self.reply(conn, Reply::Own(answer)),
            Step::Limit {
                limit,
                kind,
                detail,
            } => self.limit(conn, limit, kind, Re::Conn, detail),
            Step::Fatal {
                limit,
                kind,
                detail,
            } => {
                if let (Some(limit), Some(c)) = (limit, self.conns.get_mut(&conn)) {
                    c.limit_hit(&mut self.out, limit, detail.clone());
                }
                self.fatal(conn, kind, detail, now);
            }
            Step::Hello(_) if ready => {
                let detail = "hello was already said on this connection";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            }
            // Named as what came out of turn, as before the hello (below).
            Step::Forwarded { .. } if ready => {
                let detail = "forwarded is only accepted first, before the hello (hello was \
                              already said on this connection)";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            }
            Step::Hello(hello) => self.hello(conn, hello, now),
            Step::Forwarded {
                peer,
                secret,
                first,
            } => {
                let proven = self
                    .config
                    .bridge_secret
                    .as_ref()
                    .is_some_and(|s| s.matches(&secret));
                if first && proven {
                    self.forwarded(conn, &peer, now);
                } else if first {
                    // A bridge set up with another secret than the server's (or none set on
                    // the server): a kind of its own, so the bridge can say so in its log.
                    info!(conn = %conn, from = %socket_ip, "a bridge's secret was refused");
                    let detail = if self.config.bridge_secret.is_some() {
                        "the bridge secret is not this server's: give natter-bridge the \
                         server's (NATTER_BRIDGE_SECRET, or --server-secret-file)"
                    } else {
                        "this server has no bridge secret, so no bridge may name addresses: \
                         give natter-server and natter-bridge the same NATTER_BRIDGE_SECRET"
                    };
                    self.fatal(conn, ErrorKind::BridgeSecret, detail.into(), now);
                } else {
                    debug!(conn = %conn, from = %socket_ip, "forwarded refused: not first");
                    let detail =
                        "forwarded is only accepted first, with the server's bridge secret";
                    self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
                }
            }
            // A keepalive ping, a dialect's own answer and a line it reads when it runs are
            // taken before the hello too, at the flood-control rate.
            Step::Request(r) if r.before_hello() => self.submit(conn, r, now),
            Step::Request(r) if ready => self.submit(conn, r, now),
            Step::Request(r) if self.cluster_holds(conn, r.clone()) => {}
            Step::Request(_) => {
                let detail = "say hello first";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            }
        }
    }

    pub(super) fn forwarded(&mut self, conn: ConnId, peer: &str, now: Millis) {
        let Ok(ip) = peer.trim().parse::<IpAddr>() else {
            let detail = "forwarded peer is not an IP address";
            self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            return;
        };
        debug!(conn = %conn, peer = %ip, "forwarded");
        // The bridge's own link may be TLS (its `--server-tls`), the browser's is not known:
        // WHOIS says nothing of it (`671` is a claim about the user's whole way here).
        if let Some(c) = self.conns.get_mut(&conn) {
            c.secure = false;
            if let Some(super::dialect::AnyDialect::Binary(b)) = c.dialect_mut() {
                b.bridged = true;
            }
        }
        self.count_client(conn, ip, now);
        if let Some(detail) = self.conns.get(&conn).and_then(|c| c.refused().cloned()) {
            self.fatal(conn, ErrorKind::Full, detail, now);
        }
    }

    /// The end of a handshake: a resumed session, or a new user (with the nick asked for, or
    /// a free one like it, or a guest nick).
    fn hello(&mut self, conn: ConnId, hello: Hello, now: Millis) {
        if self.conns.get(&conn).is_some_and(|c| c.probing) {
            let detail = "hello was already said on this connection";
            self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            return;
        }
        if let Some(version) = hello.version
            && !crate::wire::speaks(version)
        {
            let oldest = crate::wire::OLDEST_VERSION;
            let detail = format!(
                "this server speaks natter protocol versions {oldest} to {PROTOCOL_VERSION}, not {version}"
            );
            self.fatal(conn, ErrorKind::Version, detail, now);
            return;
        }
        if let Some(r) = &hello.resume {
            if !crate::wire::resume_is_bounded(r) {
                let detail = "resume lists too many rooms";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
                return;
            }
            // A grace that ended by `now` has ended, though its timer may not have fired yet
            // (the shell read this hello first): the session is gone, as it would have been a
            // moment later.
            if let Some(did) = self.token_device(&r.token)
                && let Some(at) = self.timers.at(Timer::Grace(did))
                && at <= now
            {
                self.timers.cancel(Timer::Grace(did));
                self.grace_over(did, now);
            }
            if let Some(did) = self.token_device(&r.token) {
                self.resume_request(conn, did, hello, now);
                return;
            }
            if self.cluster_find_session(conn, &hello) {
                return;
            }
            self.stats.resumes_failed += 1;
            // A token that opens nothing: expired, replaced by a later welcome, or never issued
            // (copied from an old welcome, or guessed). The operator sees who presented it.
            if let Some(peer) = self.client_ip(conn) {
                let reason = "the token opens no session (expired, replaced or never issued)";
                info!(%conn, %peer, reason, "resume refused");
            }
            self.error(
                conn,
                ErrorKind::ResumeFailed,
                Re::Conn,
                super::resume::RESUME_REFUSED.into(),
            );
        }
        self.fresh_session(conn, hello, now);
    }

    /// A new user for `conn`: the nick asked for, or a free one like it, or a guest nick.
    pub(super) fn fresh_session(&mut self, conn: ConnId, hello: Hello, now: Millis) {
        let ip = self
            .conns
            .get(&conn)
            .map(|c| c.counted_ip().unwrap_or(c.socket_ip));
        if let Some(words) = ip.and_then(|ip| self.server_ban_words(ip, hello.nick.as_ref(), now)) {
            return self.fatal(conn, ErrorKind::Banned, words, now);
        }
        if self.register_signed_in(conn, now) {
            return;
        }
        if self.cluster_hello(conn, &hello) {
            return;
        }
        let resumable = self
            .conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.resumable());
        let nick = match hello.nick {
            Some(want) if hello.taken == IfTaken::Refuse && !self.nick_free(&want) => {
                let detail = if want.is_service() {
                    super::ops::service(&want)
                } else if self.accounts.registered(&want) {
                    format!("{want}{REGISTERED}")
                } else {
                    format!("the nick {want} is taken")
                };
                return self.error(conn, ErrorKind::NickTaken, Re::Nick(want), detail);
            }
            Some(want) => self.free_nick(want),
            None => self.guest_nick(),
        };
        let (uid, did) = self.new_user(nick.clone(), conn);
        self.make_ready(conn, uid, did, now);
        let token = if resumable {
            self.issue_token(did)
        } else {
            None
        };
        debug!(conn = %conn, %nick, "hello");
        self.welcome(conn, nick, token, false);
        if let Some(room) = hello.autojoin {
            self.join(conn, room, now);
        }
    }

    /// Welcomes a user (fresh or resumed) and tells the shell it is ready.
    pub(super) fn welcome(
        &mut self,
        conn: ConnId,
        nick: Nick,
        token: Option<ResumeToken>,
        resumed: bool,
    ) {
        let limits = self.config.announced_limits();
        self.reply(
            conn,
            Reply::Welcome {
                nick: nick.clone(),
                token,
                resumed,
                limits,
            },
        );
        let kind = self
            .conns
            .get(&conn)
            .and_then(|c| c.kind())
            .unwrap_or(ConnKind::Binary);
        match (kind, resumed, &self.config.motd) {
            (ConnKind::Text, false, Some(motd)) => {
                self.reply(conn, Reply::Note(super::dialect::Note::Motd(motd.clone())));
            }
            (ConnKind::Binary, false, Some(motd)) => {
                let lines = motd.to_wire();
                self.reply(conn, Reply::Msg(ServerMsg::Motd { lines }));
            }
            // IRC's registration burst: after 001–005 (the dialect's rendering of `Welcome`),
            // LUSERS and the MOTD, so that the JOINs an account's rooms bring come after
            // `376`, as IRC servers and bouncers send them.
            (ConnKind::Irc, false, motd) => {
                let motd = motd.clone();
                let counts = self.counts();
                self.reply(conn, Reply::Info(counts));
                self.reply(conn, Reply::Info(super::query::Info::Motd(motd)));
            }
            _ => {}
        }
        self.out.event(HubEvent::Ready {
            conn,
            kind,
            nick,
            resumed,
        });
    }

    /// Through the handshake: `conn` speaks for `uid`; the handshake deadlines stop and
    /// keepalive starts where the dialect wants it.
    pub(super) fn make_ready(&mut self, conn: ConnId, uid: UserId, did: DeviceId, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.make_ready(uid, did);
        let keepalive = c.dialect().is_some_and(|d| d.keepalive());
        if let Some(d) = self.devices.get_mut(&did) {
            d.seen.connected(now);
        }
        self.timers.cancel(Timer::Hello(conn));
        self.timers.cancel(Timer::Detect(conn));
        if keepalive {
            self.arm_keepalive(now);
        }
    }

    pub(super) fn hello_timeout(&mut self, conn: ConnId, now: Millis) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        match c.life {
            Life::Detect => self.detect_wait_over(conn, now),
            Life::Proxy | Life::Handshake(_) => {
                let secs = self.config.hello_timeout.0 / 1000;
                let detail = format!(
                    "{}{}",
                    super::dialect::NO_HELLO_WITHIN,
                    count(secs, "second")
                );
                self.fatal(conn, ErrorKind::Timeout, detail, now);
            }
            Life::Ready(..) | Life::Closing => {}
        }
    }

    /// How often the keepalive sweep runs: half the shorter of the two keepalive times, so a
    /// ping goes out between `ping_after` and `ping_after` + one sweep after the peer was last
    /// heard, and an unanswered one ends the connection between `ping_timeout` and
    /// `ping_timeout` + one sweep after it was sent.
    pub(super) fn keepalive_every(&self) -> Millis {
        let shorter = self.config.ping_after.0.min(self.config.ping_timeout.0);
        Millis((shorter / 2).max(1))
    }

    /// Arms the keepalive sweep unless it is armed already.
    fn arm_keepalive(&mut self, now: Millis) {
        if !self.timers.is_set(Timer::Keepalive) {
            let every = self.keepalive_every();
            self.timers.set(Timer::Keepalive, now + every);
        }
    }

    /// The keepalive sweep: one pass over the connections instead of a timer each (a timer per
    /// idle connection cost ~80 bytes, issue 22). Pings whoever has been silent for
    /// `ping_after`, ends with `Timeout` whoever left a ping unanswered for `ping_timeout`,
    /// and re-arms itself while any connection wants keepalive.
    pub(super) fn keepalive_sweep(&mut self, now: Millis) {
        let (after, timeout) = (self.config.ping_after, self.config.ping_timeout);
        let mut kept = false;
        let mut ping = Vec::new();
        let mut dead = Vec::new();
        for (&id, c) in self.conns.iter() {
            if c.closing()
                || !matches!(c.life, Life::Ready(..))
                || !c.dialect().is_some_and(|d| d.keepalive())
            {
                continue;
            }
            kept = true;
            match c.ping_sent() {
                Some(sent) if now >= sent + timeout => dead.push((id, now - c.last_rx)),
                Some(_) => {}
                None if now >= c.last_rx + after => ping.push(id),
                None => {}
            }
        }
        // In id order, so what the sweep sends does not depend on the table's layout.
        ping.sort_unstable();
        dead.sort_unstable();
        for (conn, silent) in dead {
            let detail = "no answer to ping".to_string();
            let gone = Gone::PingTimeout(silent);
            self.fatal_as(conn, ErrorKind::Timeout, detail, gone, now);
        }
        for conn in ping {
            let token = self.next_ping;
            self.next_ping += 1;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.set_ping(Some(now));
            }
            self.reply(conn, Reply::Ping(token));
        }
        if kept {
            self.arm_keepalive(now);
        }
    }
}

/// A say or action with every field given: its event may wait for the read's next ones.
fn says(step: &Step) -> bool {
    matches!(
        step,
        Step::Request(Request::Msg(ClientMsg::Say { .. } | ClientMsg::Act { .. }))
    )
}
