//! `/notice` typed by a person on `nc`: the text dialect turns it into the same notice an IRC
//! `NOTICE` is, so binary members get a notice event (or a direct notice), IRC members a
//! `NOTICE`, and other nc users `-nick- text`. Driven in memory, no sockets.

use super::*;
use crate::test_support::{nick, room};
use crate::wire::{
    ClientMsg, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, ServerMsg, decode_payload,
    encode_frame,
};
use std::collections::HashMap;

const LOCAL: IpAddr = IpAddr::V4(core::net::Ipv4Addr::LOCALHOST);

/// A hub, what it sent to each connection, and a clock.
struct Net {
    hub: Hub,
    now: Millis,
    inbox: HashMap<ConnId, Vec<u8>>,
    decoders: HashMap<ConnId, FrameDecoder>,
}

impl Net {
    fn new() -> Net {
        Net {
            hub: Hub::new(Config {
                secret_seed: [5; 32],
                ..Config::default()
            }),
            now: Millis(1_714_564_800_000),
            inbox: HashMap::new(),
            decoders: HashMap::new(),
        }
    }

    fn pump(&mut self) {
        while let Some(w) = self.hub.poll_work() {
            self.hub.handle_work(w.run(), self.now);
        }
        while let Some(t) = self.hub.poll_transmit() {
            self.inbox
                .entry(t.conn)
                .or_default()
                .extend_from_slice(&t.concat());
            self.hub.handle_written(t.conn, t.len(), self.now);
        }
        while self.hub.poll_event().is_some() {}
    }

    /// Moves the clock on by `ms`, firing every deadline on the way.
    fn advance(&mut self, ms: u64) {
        let target = self.now + Millis(ms);
        while let Some(t) = self.hub.poll_timeout().filter(|t| *t <= target) {
            self.now = self.now.max(t);
            self.hub.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
        self.pump();
    }

    fn feed(&mut self, c: ConnId, bytes: &[u8]) {
        self.hub.handle_bytes(c, bytes, self.now);
        self.pump();
    }

    /// Sends lines (nc or IRC), each with CR LF, in one read.
    fn type_lines(&mut self, c: ConnId, lines: &[&str]) {
        let bytes: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        self.feed(c, bytes.as_bytes());
    }

    /// Everything sent to a text or IRC connection since the last call, as lines.
    fn lines(&mut self, c: ConnId) -> Vec<String> {
        let bytes = self.inbox.remove(&c).unwrap_or_default();
        let s = String::from_utf8(bytes).unwrap();
        s.split_terminator("\r\n").map(str::to_owned).collect()
    }

    /// Everything sent to a binary connection since the last call.
    fn recv(&mut self, c: ConnId) -> Vec<ServerMsg> {
        let bytes = self.inbox.remove(&c).unwrap_or_default();
        let d = self.decoders.entry(c).or_default();
        d.extend(&bytes);
        let mut out = Vec::new();
        while let Some(p) = d.next_frame().unwrap() {
            out.push(decode_payload::<ServerMsg>(&p).unwrap());
        }
        out
    }

    /// A binary client, welcomed as `want` and in #lobby.
    fn bin(&mut self, want: &str) -> ConnId {
        let c = self.hub.accept(LOCAL, self.now).unwrap();
        self.feed(c, &MAGIC);
        for msg in [
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            },
            ClientMsg::Join {
                room: room("#lobby"),
            },
        ] {
            self.feed(c, &encode_frame(&msg).unwrap());
        }
        assert!(matches!(
            self.recv(c).first(),
            Some(ServerMsg::Welcome { nick, .. }) if nick.as_str() == want
        ));
        c
    }

    /// An IRC client, registered as `want` and in #lobby.
    fn irc(&mut self, want: &str) -> ConnId {
        let c = self.hub.accept_on(Door::Irc, LOCAL, self.now).unwrap();
        self.type_lines(
            c,
            &[
                &format!("NICK {want}"),
                "USER u 0 * :Real Name",
                "JOIN #lobby",
            ],
        );
        let l = self.lines(c);
        assert!(l.iter().any(|l| l.contains(" 001 ")), "{l:?}");
        c
    }

    /// An nc user, greeted (in #lobby); its nick.
    fn nc(&mut self) -> (ConnId, String) {
        let c = self.hub.accept(LOCAL, self.now).unwrap();
        self.advance(self.hub.config().text_detect_wait.0);
        let n = self.hub.nick(c).unwrap().to_string();
        (c, n)
    }

    /// Flood tokens back, and everything said so far read and forgotten.
    fn settle(&mut self, conns: &[ConnId]) {
        self.advance(5_000);
        for c in conns {
            self.inbox.remove(c);
            self.decoders.remove(c);
        }
    }
}

#[test]
fn an_nc_users_notice_to_a_room_is_a_notice_on_every_door() {
    let mut n = Net::new();
    let carl = n.bin("carl");
    let irky = n.irc("irky");
    let (t, tn) = n.nc();
    let (other, _) = n.nc();
    n.settle(&[carl, irky, t, other]);

    n.type_lines(t, &["/notice #lobby build is green"]);
    let got = n.recv(carl);
    assert!(
        matches!(&got[..], [ServerMsg::Event(ev)]
            if ev.from.as_str() == tn
                && matches!(&ev.kind, EventKind::Notice { text, .. } if text.as_str() == "build is green")),
        "{got:?}"
    );
    assert_eq!(
        n.lines(irky),
        [format!(":{tn}!{tn}@natter NOTICE #lobby :build is green")]
    );
    assert_eq!(n.lines(other), [format!("-{tn}- build is green")]);
    // A person does not get their own line back, nor an error.
    assert_eq!(n.lines(t), Vec::<String>::new());

    // A plain line from the same person is still a say.
    n.type_lines(t, &["and hello"]);
    assert!(matches!(
        &n.recv(carl)[..],
        [ServerMsg::Event(ev)] if matches!(ev.kind, EventKind::Say { .. })
    ));
}

#[test]
fn an_nc_users_notice_to_a_nick_is_a_direct_notice_on_every_door() {
    let mut n = Net::new();
    let carl = n.bin("carl");
    let irky = n.irc("irky");
    let (t, tn) = n.nc();
    let (other, on) = n.nc();
    n.settle(&[carl, irky, t, other]);

    n.type_lines(
        t,
        &[
            "/notice carl psst",
            "/notice irky pssst",
            &format!("/notice {on} hi"),
        ],
    );
    assert!(matches!(&n.recv(carl)[..], [ServerMsg::DirectNotice(d)]
            if d.from.as_str() == tn && d.to.as_str() == "carl" && d.text.as_str() == "psst"),);
    assert_eq!(
        n.lines(irky),
        [format!(":{tn}!{tn}@natter NOTICE irky :pssst")]
    );
    assert_eq!(n.lines(other), [format!("-{tn}- hi")]);
    // The sender sees each as it went.
    assert_eq!(
        n.lines(t),
        [
            "-> -carl- psst",
            "-> -irky- pssst",
            &format!("-> -{on}- hi")
        ]
    );
}

#[test]
fn an_nc_users_bad_notice_is_refused_in_words() {
    let mut n = Net::new();
    let carl = n.bin("carl");
    let (t, _) = n.nc();
    n.settle(&[carl, t]);

    for (line, words) in [
        ("/notice", "usage: /notice #room|nick text"),
        ("/notice #lobby", "usage: /notice #room|nick text"),
        ("/notice 9lives hi", "starts with a letter"),
        ("/notice nobody hi", "nobody is called nobody"),
        ("/notice #elsewhere hi", "#elsewhere"),
    ] {
        n.type_lines(t, &[line]);
        let l = n.lines(t);
        assert!(
            l.len() == 1 && l[0].contains(words),
            "{line}: {l:?} (wanted {words:?})"
        );
        n.advance(2_000);
    }
    assert!(n.recv(carl).is_empty(), "nothing reached anyone");
}
