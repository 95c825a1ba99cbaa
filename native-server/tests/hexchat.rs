//! HexChat end to end: Debian's `hexchat` (GTK, in an Xvfb display of its own) on natter's IRC
//! listener chats in one room with a person on nc, both ways: lines, actions, notices, the
//! topic, private messages, a nick change, the names list, the history its join brings, and its
//! quit; it signs in with SASL and moderates (its own ban masks); over TLS it verifies natter's
//! certificate. HexChat is driven and watched from inside by a Python plugin (Debian's
//! `hexchat-python3`) that the test puts in HexChat's config directory: it runs the commands
//! the test drops beside it and writes what HexChat prints (its print events, with their
//! fields) as JSON lines. So what is checked is what HexChat understood, not what the server
//! sent. `cargo xtask test` installs the packages.
//!
//! HexChat refuses to start quietly as root (a modal "Running IRC as root is stupid!" dialog),
//! so under root it runs as `nobody` (`setpriv`) in a directory everyone may write.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader as StdBufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// How long one thing HexChat should show may take to show.
const SHOW_WAIT: Duration = Duration::from_secs(15);

/// The plugin: print events out, commands in. `DUMP` writes the channel's users and topic.
const PLUGIN: &str = r#"
__module_name__ = "natter-test"
__module_version__ = "1"
__module_description__ = "natter's test: print events out, commands in"
import hexchat, json, os
DIR = hexchat.get_info("configdir")
OUT = open(os.path.join(DIR, "events.jsonl"), "a", buffering=1)
def emit(**kv):
    OUT.write(json.dumps(kv) + "\n")
EVENTS = ["Channel Message", "Channel Action", "Channel Notice", "Notice", "Topic Change",
          "Topic", "Join", "You Join", "Part", "Quit", "Change Nick", "Private Message to Dialog",
          "Private Action to Dialog", "Server Error", "Disconnected", "Connected", "Server Text",
          "Kick", "You Kicked", "Channel Operator", "Channel Ban", "Connection Failed",
          "SSL Message"]
def on_print(word, word_eol, event):
    emit(event=event, channel=hexchat.get_info("channel"), words=[w or "" for w in word])
    return hexchat.EAT_NONE
for e in EVENTS:
    hexchat.hook_print(e, on_print, e)
def poll(_):
    names = sorted(n for n in os.listdir(DIR) if n.startswith("cmd-"))
    for n in names:
        path = os.path.join(DIR, n)
        with open(path) as f:
            c = json.load(f)
        os.remove(path)
        ctx = hexchat.find_context(channel=c["channel"]) if c["channel"] else hexchat.get_context()
        if ctx is None:
            emit(event="NO CONTEXT", channel=c["channel"], words=[])
        elif c["command"] == "DUMP":
            users = sorted(u.prefix + u.nick for u in ctx.get_list("users"))
            emit(event="DUMP", channel=c["channel"], words=[ctx.get_info("topic") or ""] + users)
        else:
            ctx.command(c["command"])
    return True
hexchat.hook_timer(100, poll)
emit(event="LOADED", channel="", words=[])
"#;

/// An X display of its own (`Xvfb`), killed when dropped.
struct Display {
    xvfb: Child,
    number: String,
}

impl Display {
    fn start() -> Display {
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg("1024x768x24")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("Xvfb is missing ({e}): `cargo xtask test` installs it (Debian: xvfb)")
            });
        // Xvfb writes the display's number once it accepts clients.
        let mut out = StdBufReader::new(xvfb.stdout.take().expect("piped stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = tx.send(line);
            // Keep the pipe open (and drained) for as long as Xvfb runs.
            let _ = out.read_to_end(&mut Vec::new());
        });
        let number = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default()
            .trim()
            .to_owned();
        if number.is_empty() {
            let _ = xvfb.kill();
            let _ = xvfb.wait();
            panic!("Xvfb did not say its display within 10 s");
        }
        Display { xvfb, number }
    }
}

impl Drop for Display {
    /// SIGTERM first, so Xvfb removes its lock file and socket (`/tmp/.X<n>-lock`); SIGKILL if
    /// it is still there after 5 s.
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = i32::try_from(self.xvfb.id()).map(Pid::from_raw);
        if let Ok(pid) = pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.xvfb.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// HexChat connected to natter's IRC port as `nick`, joining `channel`; killed when dropped.
struct HexChat {
    child: Child,
    dir: tempfile::TempDir,
    /// Bytes of `events.jsonl` already looked at by [`HexChat::wait`].
    read: usize,
    commands: u32,
    // Dropped after HexChat.
    _display: Display,
}

impl HexChat {
    /// HexChat with one network, natter's IRC port, which it connects to at start and where
    /// it joins `channel` as `nick`, or signs in with SASL PLAIN as `sasl`'s account; over TLS
    /// when given the only CA it trusts (OpenSSL's `SSL_CERT_FILE`: its default store).
    fn start(
        irc: SocketAddr,
        nick: &str,
        channel: &str,
        sasl: Option<(&str, &str)>,
        tls_ca: Option<&Path>,
    ) -> HexChat {
        let display = Display::start();
        let dir = tempfile::tempdir().expect("a config dir");
        let open = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        open(dir.path(), 0o777);
        let addons = dir.path().join("addons");
        std::fs::create_dir(&addons).expect("addons dir");
        open(&addons, 0o777);
        let conf = format!(
            "irc_nick1 = {nick}\nirc_nick2 = {nick}_\nirc_nick3 = {nick}__\n\
             irc_user_name = {nick}\nirc_real_name = {nick} on HexChat\n\
             gui_slist_skip = 1\ngui_join_dialog = 0\ngui_quit_dialog = 0\n\
             text_logging = 0\nnet_throttle = 0\ngui_tray = 0\n"
        );
        std::fs::write(dir.path().join("hexchat.conf"), conf).expect("write hexchat.conf");
        // The network (servlist.c's format): flag 8 connects at start; login type 6 is SASL
        // PLAIN, with `U` the account and `P` its password.
        let login = sasl.map_or(String::new(), |(account, password)| {
            format!("U={account}\nP={password}\nL=6\n")
        });
        // Flag 4 is TLS for every server of the network, verified (flag 32 would accept any
        // certificate).
        let flags = if tls_ca.is_some() { 8 | 4 } else { 8 };
        let network = format!(
            "v=2.16.1\n\nN=natter\nI={nick}\n{login}E=UTF-8 (Unicode)\nF={flags}\nD=0\n\
             S={}/{}\nJ={channel}\n\n",
            irc.ip(),
            irc.port()
        );
        std::fs::write(dir.path().join("servlist.conf"), network).expect("write servlist.conf");
        std::fs::write(addons.join("natter_test.py"), PLUGIN).expect("write the plugin");
        for f in ["hexchat.conf", "servlist.conf", "addons/natter_test.py"] {
            open(&dir.path().join(f), 0o666);
        }
        let mut cmd = if nix::unistd::geteuid().is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "hexchat",
            ]);
            c
        } else {
            Command::new("hexchat")
        };
        let home = dir.path();
        if let Some(ca) = tls_ca {
            let copy = home.join("ca.pem");
            std::fs::copy(ca, &copy).expect("copy the CA");
            open(&copy, 0o644);
            cmd.env("SSL_CERT_FILE", copy).env_remove("SSL_CERT_DIR");
        }
        let child = cmd
            .arg("-d")
            .arg(home)
            .env("DISPLAY", format!(":{}", display.number))
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home)
            .env("XDG_CACHE_HOME", home)
            .env("XDG_DATA_HOME", home)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("NO_AT_BRIDGE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "hexchat is missing ({e}): `cargo xtask test` installs it \
                     (Debian: hexchat hexchat-python3 xvfb)"
                )
            });
        HexChat {
            child,
            dir,
            read: 0,
            commands: 0,
            _display: display,
        }
    }

    /// Everything HexChat printed so far (the plugin's lines).
    fn events(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("events.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a print event `event` whose fields start with `words` (compared whole), after
    /// those already matched; returns all its fields.
    async fn wait(&mut self, event: &str, words: &[&str]) -> Vec<String> {
        let what = format!("{event} {words:?}");
        self.wait_for(event, &what, |fields| {
            fields.len() >= words.len() && fields.iter().zip(words).all(|(f, w)| f == w)
        })
        .await
    }

    /// Waits for a print event `event` whose fields pass `wanted`, after those already matched.
    async fn wait_for(
        &mut self,
        event: &str,
        what: &str,
        wanted: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + SHOW_WAIT;
        loop {
            let path = self.dir.path().join("events.jsonl");
            let text = std::fs::read(&path).unwrap_or_default();
            // Whole lines only: the plugin may be mid-line.
            let upto = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let fresh = String::from_utf8_lossy(&text[self.read.min(upto)..upto]).into_owned();
            let mut consumed = self.read;
            for line in fresh.split_inclusive('\n') {
                consumed += line.len();
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                let fields: Vec<String> = v["words"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|w| w.as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                if v["event"] == event && wanted(&fields) {
                    self.read = consumed;
                    return fields;
                }
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self.events().iter().map(Value::to_string).collect();
                panic!(
                    "HexChat did not show {what} within {SHOW_WAIT:?}; it showed:\n{}",
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Has HexChat run `command` (what one types, without the `/`) in `channel`'s window.
    fn command(&mut self, channel: &str, command: &str) {
        self.commands += 1;
        let body = serde_json::json!({ "channel": channel, "command": command }).to_string();
        let tmp = self.dir.path().join(format!("tmp-{}", self.commands));
        std::fs::write(&tmp, body).expect("write a command");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let name = self.dir.path().join(format!("cmd-{:06}", self.commands));
        std::fs::rename(&tmp, name).expect("hand over a command");
    }

    /// The topic and the names HexChat lists in `channel` (with their prefixes), sorted.
    async fn names(&mut self, channel: &str) -> (String, Vec<String>) {
        self.command(channel, "DUMP");
        let mut fields = self.wait("DUMP", &[]).await;
        let topic = fields.remove(0);
        (topic, fields)
    }
}

impl Drop for HexChat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hexchat_and_nc_chat_in_one_room() {
    let (_server, natter, irc) = irc_server().await;
    let (mut alice, _) = TextClient::welcomed(natter, "alice").await;
    alice.send("/nick alice").await;
    alice.expect_has("alice").await;
    alice.send("/join #lab").await;
    alice.expect_has("#lab").await;
    alice.send("said before HexChat came").await;
    // nc does not echo one's own lines: a reply to a later command says the line went first.
    alice.send("/rooms").await;
    alice.expect_has("#lab").await;

    let mut hex = HexChat::start(irc, "hexbob", "#lab", None, None);
    hex.wait("LOADED", &[]).await;
    hex.wait("You Join", &["hexbob", "#lab"]).await;
    // Its join brings the room's recent history (HexChat asks for server-time).
    hex.wait("Channel Message", &["alice", "said before HexChat came"])
        .await;
    alice.expect_has("hexbob joined").await;
    let (_, names) = hex.names("#lab").await;
    assert_eq!(names, ["alice", "hexbob"], "HexChat's names list");

    // nc → HexChat, UTF-8 intact.
    alice.send("hello HexChat, ünïcödé ✓").await;
    hex.wait("Channel Message", &["alice", "hello HexChat, ünïcödé ✓"])
        .await;
    // HexChat → nc.
    hex.command("#lab", "say hi from HexChat");
    alice.expect_has("<hexbob> hi from HexChat").await;
    // Actions both ways.
    hex.command("#lab", "me dances");
    alice.expect_has("* hexbob dances").await;
    alice.send("/me waves").await;
    hex.wait("Channel Action", &["alice", "waves"]).await;
    // A notice to the room.
    hex.command("#lab", "notice #lab heads up");
    alice.expect_has("-hexbob- heads up").await;
    // The topic, set on nc, as HexChat shows and keeps it.
    alice.send("/topic natter and HexChat").await;
    hex.wait("Topic Change", &["alice", "natter and HexChat", "#lab"])
        .await;
    let (topic, _) = hex.names("#lab").await;
    assert_eq!(topic, "natter and HexChat");
    // Private messages both ways.
    alice.send("/msg hexbob psst").await;
    hex.wait("Private Message to Dialog", &["alice", "psst"])
        .await;
    hex.command("#lab", "msg alice right back");
    alice.expect_has("*hexbob* right back").await;
    // A nick change on nc renames the person in HexChat's list.
    alice.send("/nick alicia").await;
    hex.wait("Change Nick", &["alice", "alicia"]).await;
    let (_, names) = hex.names("#lab").await;
    assert_eq!(
        names,
        ["alicia", "hexbob"],
        "HexChat's names list after /nick"
    );
    alice.send("still here").await;
    hex.wait("Channel Message", &["alicia", "still here"]).await;
    // HexChat quits with its words.
    hex.command("#lab", "quit off to lunch");
    alice.expect_has("-- hexbob quit (off to lunch)").await;
    hex.wait("Disconnected", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hexchat_signs_in_with_sasl_and_moderates_a_room() {
    let (_server, natter, irc) = irc_server().await;
    // The account is registered on nc, which stays signed in (and in #lobby).
    let (mut dora, _) = TextClient::welcomed(natter, "dora").await;
    dora.send("/nick dora").await;
    dora.expect_has("you are now known as dora").await;
    dora.send("/register sasl-passphrase").await;
    dora.expect_has("you are signed in as dora").await;
    let (mut eve, _) = TextClient::welcomed(natter, "evelyn").await;
    eve.send("/nick evelyn").await;
    eve.expect_has("you are now known as evelyn").await;
    eve.send("/join #mod").await;
    eve.expect_has("you are in #mod").await;
    let (mut fred, _) = TextClient::welcomed(natter, "fred").await;
    fred.send("/nick fred").await;
    fred.expect_has("you are now known as fred").await;
    fred.send("/join #mod").await;
    fred.expect_has("you are in #mod").await;

    // HexChat asks for the nick `somebody` and signs in as dora: it is dora, in dora's rooms.
    let mut hex = HexChat::start(
        irc,
        "somebody",
        "#mod",
        Some(("dora", "sasl-passphrase")),
        None,
    );
    hex.wait("Server Text", &["You are now logged in as dora"])
        .await;
    hex.wait("You Join", &["dora", "#lobby"]).await;
    hex.wait("You Join", &["dora", "#mod"]).await;
    hex.command("#mod", "say hello as dora from HexChat");
    dora.expect_has("<dora> hello as dora from HexChat").await;

    // `MODE +r` registers the room to the signed-in account, which becomes its operator.
    hex.command("#mod", "mode #mod +r");
    hex.wait("Channel Operator", &["natter.irc", "dora"]).await;
    eve.expect_has("dora set #mod +r").await;
    let (_, names) = hex.names("#mod").await;
    assert_eq!(names, ["@dora", "evelyn", "fred"], "HexChat's names list");

    // HexChat's `/ban NICK` makes `*!*@natter` of a nick (its default ban type), which is
    // everyone here: refused, and HexChat shows why and what to type instead.
    hex.command("#mod", "ban evelyn");
    hex.wait_for("Server Text", "the 696 for *!*@natter", |f| {
        f[0].contains("*!*@natter")
            && f[0].contains("so that mask is everyone")
            && f[0].contains("/ban bob 3")
    })
    .await;
    // Its ban type 3 (`*!*evelyn@natter`) bans evelyn, who is put out and cannot come back.
    hex.command("#mod", "ban evelyn 3");
    hex.wait("Kick", &["dora", "evelyn", "#mod"]).await;
    eve.expect_has("dora put you out of #mod (banned)").await;
    eve.send("/join #mod").await;
    eve.expect_has("you are banned from #mod").await;
    // A kick with a reason.
    hex.command("#mod", "kick fred calm down");
    hex.wait("Kick", &["dora", "fred", "#mod", "calm down"])
        .await;
    fred.expect_has("dora put you out of #mod (calm down)")
        .await;
    let (_, names) = hex.names("#mod").await;
    assert_eq!(
        names,
        ["@dora"],
        "HexChat's names list after the ban and the kick"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hexchat_over_tls_verifies_natters_certificate() {
    use natter_tls::dev_ca::DevCa;
    let pki = tempfile::tempdir().expect("a directory for the certificates");
    let ca = DevCa::new("natter test CA").expect("a CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]).expect("a certificate");
    let (cert, key) = leaf.write(pki.path()).expect("its files");
    let ca_file = pki.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write the CA");
    let other = DevCa::new("some other CA").expect("a CA");
    let other_file = pki.path().join("other.pem");
    std::fs::write(&other_file, other.cert_pem()).expect("write the other CA");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--irc-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().expect("a UTF-8 path"),
        "--tls-key",
        key.to_str().expect("a UTF-8 path"),
    ];
    let (_server, log, natter) = spawn_server(&args, &[]).await;
    let irc = irc_addr_then_drain(log, "IrcTls").await;
    let (mut alice, _) = TextClient::welcomed(natter, "alice").await;
    alice.send("/nick alice").await;
    alice.expect_has("you are now known as alice").await;
    alice.send("/join #sec").await;
    alice.expect_has("you are in #sec").await;

    // Trusting another CA only, HexChat refuses natter's certificate and never gets in.
    let mut wary = HexChat::start(irc, "wary", "#sec", None, Some(&other_file));
    let failed = wary.wait("Connection Failed", &[]).await;
    assert!(failed[0].contains("certificate"), "{failed:?}");
    drop(wary);

    // Trusting natter's CA, it chats over TLS.
    let mut hex = HexChat::start(irc, "hexbob", "#sec", None, Some(&ca_file));
    hex.wait("You Join", &["hexbob", "#sec"]).await;
    alice.expect_has("hexbob joined #sec").await;
    hex.command("#sec", "say over TLS from HexChat");
    alice.expect_has("<hexbob> over TLS from HexChat").await;
    alice.send("and back in clear to natter").await;
    hex.wait("Channel Message", &["alice", "and back in clear to natter"])
        .await;
    // Nobody came in from the refused HexChat.
    alice.send("/who").await;
    let who = alice.expect_has("-- #sec (2): ").await;
    assert!(!who.contains("wary"), "{who}");
}
