//! Bytes in: the first byte decides binary or text mode; binary connections then send the magic,
//! frames and a hello (after an optional `Forwarded` from a trusted bridge); text connections are
//! greeted and send lines. Also the handshake and keepalive deadlines.

use super::*;

impl Hub {
    pub(super) fn refuse_binary(&mut self, conn: ConnId, detail: String) {
        self.fatal(conn, ErrorKind::Full, detail, self.now);
    }

    pub(super) fn become_text(&mut self, conn: ConnId, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.set_kind(ConnKind::Text);
        c.phase = Phase::Ready;
        self.timers.cancel(Timer::Detect(conn));
        self.timers.cancel(Timer::Hello(conn));
        if let Some(detail) = c.refused().cloned() {
            self.fatal(conn, ErrorKind::Full, detail, now);
            return;
        }
        let nick = self.guest_nick();
        self.new_user(nick.clone(), ConnKind::Text, conn, None);
        debug!(conn = %conn, %nick, "text mode");
        self.send_line(conn, &format!("Welcome to natter, {nick}! {HELP_LINE}"));
        self.out.events.push_back(HubEvent::Ready {
            conn,
            kind: ConnKind::Text,
            nick,
            resumed: false,
        });
        self.join(conn, RoomName::lobby(), now);
    }

    pub(super) fn binary_bytes(&mut self, conn: ConnId, mut data: &[u8], now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Phase::Magic(n) = c.phase {
            let n = usize::from(n);
            let take = (MAGIC.len() - n).min(data.len());
            if data[..take] != MAGIC[n..n + take] {
                let detail = crate::wire::WireError::BadMagic.to_string();
                c.limit_hit(&mut self.out, "magic", detail.clone());
                self.fatal(conn, ErrorKind::Protocol, detail, now);
                return;
            }
            c.phase = if n + take == MAGIC.len() {
                Phase::Hello { forwarded_ok: true }
            } else {
                // Below the magic's length (4), so it fits.
                Phase::Magic((n + take) as u8)
            };
            data = &data[take..];
        }
        for chunk in data.chunks(INBOUND_MAX_BYTES) {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let Mode::Binary(frames) = &mut c.mode else {
                return;
            };
            frames.extend(chunk);
            loop {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if c.closing() {
                    return;
                }
                let Mode::Binary(frames) = &mut c.mode else {
                    return;
                };
                let payload = match frames.next_frame() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        c.limit_hit(&mut self.out, "frame", e.to_string());
                        self.fatal(conn, ErrorKind::Protocol, e.to_string(), now);
                        return;
                    }
                };
                match decode_payload::<ClientMsg>(&payload) {
                    Ok(msg) => self.on_frame(conn, msg, now),
                    Err(e) => {
                        self.fatal(conn, ErrorKind::Protocol, e.to_string(), now);
                        return;
                    }
                }
            }
        }
    }

    pub(super) fn on_frame(&mut self, conn: ConnId, msg: ClientMsg, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let phase = c.phase;
        if phase == (Phase::Hello { forwarded_ok: true })
            && !matches!(msg, ClientMsg::Forwarded { .. })
        {
            // `Forwarded` counts only as the very first frame.
            c.phase = Phase::Hello {
                forwarded_ok: false,
            };
        }
        let socket_ip = c.socket_ip;
        match (phase, msg) {
            (_, ClientMsg::Ping { token }) => self.send(conn, ServerMsg::Pong { token }),
            (_, ClientMsg::Pong { .. }) => {}
            (Phase::Hello { forwarded_ok }, ClientMsg::Forwarded { peer }) => {
                if forwarded_ok && self.config.trusted_proxies.contains(&socket_ip) {
                    self.forwarded(conn, &peer, now);
                } else {
                    let detail = "forwarded is only accepted first, from a trusted bridge";
                    self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
                }
            }
            (
                Phase::Hello { .. },
                ClientMsg::Hello {
                    version,
                    nick,
                    resume,
                },
            ) => self.hello(conn, version, nick, resume, now),
            (Phase::Hello { .. }, _) => {
                let detail = "say hello first";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            }
            (Phase::Ready, ClientMsg::Hello { .. } | ClientMsg::Forwarded { .. }) => {
                let detail = "hello was already said on this connection";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            }
            (Phase::Ready, ClientMsg::History { room, after }) => {
                self.history(conn, room, after);
            }
            (Phase::Ready, msg) => self.submit(conn, Pending::Binary(msg), now),
            (Phase::Detect | Phase::Magic(_) | Phase::Closing, _) => {}
        }
    }

    pub(super) fn forwarded(&mut self, conn: ConnId, peer: &str, now: Millis) {
        let Ok(ip) = peer.trim().parse::<IpAddr>() else {
            let detail = "forwarded peer is not an IP address";
            self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
            return;
        };
        // `::ffff:1.2.3.4` and `1.2.3.4` are one address for the per-IP limits.
        let ip = ip.to_canonical();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.phase = Phase::Hello {
            forwarded_ok: false,
        };
        if let Some(old) = c.counted_ip.take() {
            self.ips.release(old);
        }
        debug!(conn = %conn, proxy = %c.socket_ip, peer = %ip, "forwarded");
        if IpTable::exempt(&self.config, ip) {
            return;
        }
        match self.ips.admit(&self.config, ip, now) {
            Ok(()) => c.counted_ip = Some(ip),
            Err(r) => {
                c.limit_hit(&mut self.out, r.limit, r.detail.clone());
                self.fatal(conn, ErrorKind::Full, r.detail, now);
            }
        }
        if !self.timers.is_set(Timer::PruneIps) {
            self.timers
                .set(Timer::PruneIps, now + self.config.connect_window);
        }
    }

    pub(super) fn hello(
        &mut self,
        conn: ConnId,
        version: u16,
        nick: Nick,
        resume: Option<crate::wire::Resume>,
        now: Millis,
    ) {
        if version != PROTOCOL_VERSION {
            let detail = format!(
                "this server speaks natter protocol version {PROTOCOL_VERSION}, not {version}"
            );
            self.fatal(conn, ErrorKind::Version, detail, now);
            return;
        }
        if let Some(r) = resume {
            if !crate::wire::resume_is_bounded(&r) {
                let detail = "resume lists too many rooms";
                self.fatal(conn, ErrorKind::Protocol, detail.into(), now);
                return;
            }
            if let Some(&uid) = self.tokens.get(&r.token) {
                self.resume(conn, uid, &r.rooms, now);
                return;
            }
            self.error(
                conn,
                ErrorKind::ResumeFailed,
                Re::Conn,
                "your earlier session has expired; starting a new one".into(),
            );
        }
        let nick = self.free_nick(nick);
        let token = self.fresh_token();
        self.new_user(nick.clone(), ConnKind::Binary, conn, Some(token.clone()));
        self.make_ready(conn, now);
        debug!(conn = %conn, %nick, "hello");
        self.welcome(conn, nick, Some(token), false);
    }

    /// Welcomes a binary user (fresh or resumed) and tells the shell it is ready.
    pub(super) fn welcome(
        &mut self,
        conn: ConnId,
        nick: Nick,
        token: Option<ResumeToken>,
        resumed: bool,
    ) {
        if let Some(token) = token {
            self.send(
                conn,
                ServerMsg::Welcome {
                    version: PROTOCOL_VERSION,
                    nick: nick.clone(),
                    token,
                    resumed,
                    limits: self.config.announced_limits(),
                },
            );
        }
        self.out.events.push_back(HubEvent::Ready {
            conn,
            kind: ConnKind::Binary,
            nick,
            resumed,
        });
    }

    pub(super) fn make_ready(&mut self, conn: ConnId, now: Millis) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.phase = Phase::Ready;
        }
        self.timers.cancel(Timer::Hello(conn));
        self.timers
            .set(Timer::Keepalive(conn), now + self.config.ping_after);
    }

    pub(super) fn hello_timeout(&mut self, conn: ConnId, now: Millis) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        match c.phase {
            Phase::Detect => self.become_text(conn, now),
            Phase::Magic(_) | Phase::Hello { .. } => {
                let secs = self.config.hello_timeout.0 / 1000;
                let detail = format!("no hello within {secs} seconds");
                self.fatal(conn, ErrorKind::Timeout, detail, now);
            }
            Phase::Ready | Phase::Closing => {}
        }
    }

    pub(super) fn keepalive(&mut self, conn: ConnId, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() || c.kind() != Some(ConnKind::Binary) {
            return;
        }
        if let Some((_, sent)) = c.ping {
            let deadline = sent + self.config.ping_timeout;
            if now >= deadline {
                let detail = "no answer to ping".to_string();
                self.fatal(conn, ErrorKind::Timeout, detail, now);
            } else {
                self.timers.set(Timer::Keepalive(conn), deadline);
            }
            return;
        }
        let due = c.last_rx + self.config.ping_after;
        if now < due {
            self.timers.set(Timer::Keepalive(conn), due);
            return;
        }
        let token = self.next_ping;
        self.next_ping += 1;
        c.ping = Some((token, now));
        self.timers
            .set(Timer::Keepalive(conn), now + self.config.ping_timeout);
        self.send(conn, ServerMsg::Ping { token });
    }

    pub(super) fn text_bytes(&mut self, conn: ConnId, data: &[u8], now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Mode::Text(reader) = &mut c.mode else {
            return;
        };
        let mut lines = Vec::new();
        reader.feed(data, |l| lines.push(l));
        for line in lines {
            if self.conns.get(&conn).is_none_or(|c| c.closing()) {
                return;
            }
            if line.cut {
                let detail = format!(
                    "line too long (max {} bytes), cut",
                    crate::limits::MAX_LINE_BYTES
                );
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.limit_hit(&mut self.out, "line", detail.clone());
                }
                self.error(conn, ErrorKind::LineTooLong, Re::Conn, detail);
            }
            self.text_line(conn, &line.text, now);
        }
    }
}
