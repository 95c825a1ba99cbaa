//! Real IRC clients end to end: irssi and WeeChat (Debian's packages; `cargo xtask test`
//! installs them) in panes of a private tmux server, in `#lobby` with a person on nc and a
//! `natter` line-mode user, on a natter-server with an IRC listener. Messages, actions, notices
//! (to the channel and to nicks), topics, joins, parts and nick changes go every way, and each
//! client shows them in its own words. A client that parts and joins again is shown what was
//! said while it was out, and WeeChat, which keeps the channel's buffer, nothing a second time.
//! Each IRC client runs with a throwaway home directory; the tmux server (and with it both
//! clients) is killed when the test ends, also when it fails. irssi and WeeChat also connect over
//! TLS (`--irc-tls-listen`), verifying the server's certificate against a throwaway CA. WeeChat,
//! signed in with SASL, registers a channel and bans an nc user with its own `/mode` and `/ban`,
//! lists the bans (who set each and when), lifts the ban with `/unban 1`, sets a key and a
//! limit, and kills an nc user. irssi, signed in with SASL, bans with its own `/ban` (a mask
//! built from the WHOX it ran at its join) the user it names, not the one whose nick is that
//! user's `USER` name, and its `/kickban` (a ban, then a kick) puts out with its reason. irssi and
//! WeeChat, on a server with a store that restarts, come back by themselves to their channels
//! and are shown what was said while they were away, once.

mod support;

use natter_server::ServerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{Client, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// IRC clients connect, negotiate and join at their own pace; give their screens longer.
const SCREEN_WAIT: Duration = Duration::from_secs(20);

/// A private tmux server with the IRC clients in it, and their throwaway homes.
struct Tmux {
    socket: String,
    conf: PathBuf,
    homes: Vec<PathBuf>,
}

impl Tmux {
    fn new() -> Tmux {
        // One tmux server per test, also when tests of this file run at once.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("natter-irc-test-{}-{n}", std::process::id());
        let conf = std::env::temp_dir().join(format!("{socket}.conf"));
        std::fs::write(&conf, "set -g status off\n").expect("write tmux config");
        Tmux {
            socket,
            conf,
            homes: Vec::new(),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("tmux runs (is tmux installed? `cargo xtask test` installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A fresh empty directory for one client's home, removed when the test ends.
    fn home(&mut self, client: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{}-{client}", self.socket));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a client home");
        self.homes.push(dir.clone());
        dir
    }

    /// Runs `program args...` in a new 160x40 session called `name`.
    fn start(&self, name: &str, program: &str, args: &[&str]) {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: `cargo xtask test` installs it (Debian: apt-get install irssi weechat)"
        );
        let mut cmd = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "160",
            "-y",
            "40",
            program,
        ];
        cmd.extend_from_slice(args);
        self.run(&cmd);
    }

    /// Starts irssi in a session called `name`, with a throwaway home holding `config` (its
    /// config file) and `args` after `--home`.
    fn irssi(&mut self, name: &str, config: &str, args: &[&str]) {
        let home = self.home(name);
        std::fs::write(home.join("config"), config).expect("write the irssi config");
        let home_arg = format!("--home={}", home.display());
        let mut all = vec![home_arg.as_str()];
        all.extend_from_slice(args);
        self.start(name, "/usr/bin/irssi", &all);
    }

    /// Starts WeeChat in a session called `weechat`, with a throwaway home, running the
    /// commands `setup` (`;`-separated) first.
    fn weechat(&mut self, setup: &str) {
        let home = self.home("weechat").display().to_string();
        self.start("weechat", "/usr/bin/weechat", &["-d", &home, "-r", setup]);
    }

    fn type_line(&self, target: &str, text: &str) {
        self.run(&["send-keys", "-t", target, "-l", text]);
        self.run(&["send-keys", "-t", target, "Enter"]);
    }

    /// Types `text` into `target` until a line with every one of `parts` shows there: a
    /// terminal program may drop keys that arrive while it sets up its terminal, so a line that
    /// left no trace and is not in the input line either is typed again (twice at most).
    async fn type_until(&self, target: &str, text: &str, parts: &[&str]) -> String {
        for _ in 0..2 {
            self.type_line(target, text);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline {
                let screen = self.screen(target);
                if let Some(line) = screen.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                    return line.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.screen(target).contains(text) {
                break;
            }
        }
        self.wait_line(target, parts).await
    }

    fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", target])
    }

    /// Waits until some line of `target`'s screen contains every one of `parts`.
    async fn wait_line(&self, target: &str, parts: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen(target);
            if let Some(line) = screen.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            if tokio::time::Instant::now() >= deadline {
                // The other panes' screens, for those that exist in this test.
                let panes = self.run(&["list-panes", "-a", "-F", "#{window_name}"]);
                let others: String = ["irssi", "weechat"]
                    .iter()
                    .filter(|t| **t != target && panes.lines().any(|p| p == **t))
                    .map(|t| format!("\n{t}'s screen:\n{}", self.screen(t)))
                    .collect();
                panic!(
                    "{target}: no line with {parts:?} within {SCREEN_WAIT:?}; screen:\n{screen}{others}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .arg("-L")
                .arg(&self.socket)
                .args(args)
                .output()
        };
        let socket_path = tmux(&["display-message", "-p", "#{socket_path}"])
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let pids: Vec<String> = tmux(&["list-panes", "-a", "-F", "#{pane_pid}"])
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // Killing the tmux server ends irssi and WeeChat with it; they may still write their
        // configuration on the way out, so their homes go once they are gone (bounded).
        let _ = tmux(&["kill-server"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pids
            .iter()
            .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(path) = socket_path.filter(|p| !p.is_empty()) {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&self.conf);
        for home in &self.homes {
            let _ = std::fs::remove_dir_all(home);
        }
    }
}

/// A person on nc.
struct Nc {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    seen: Vec<String>,
}

impl Nc {
    async fn connect(addr: SocketAddr) -> Nc {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (r, w) = stream.into_split();
        Nc {
            reader: BufReader::new(r),
            writer: w,
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("nc write");
    }

    /// Waits for a line containing every one of `parts`.
    async fn expect(&mut self, parts: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
        loop {
            let mut buf = String::new();
            match tokio::time::timeout_at(deadline, self.reader.read_line(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    let line = buf.trim_end().to_owned();
                    self.seen.push(line.clone());
                    if parts.iter().all(|p| line.contains(p)) {
                        return line;
                    }
                }
                other => panic!(
                    "nc: no line with {parts:?} ({other:?}); saw {:#?}",
                    self.seen
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irssi_weechat_nc_and_the_cli_talk_in_one_room() {
    let mut config = ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let server = natter_server::start(config).await.expect("server starts");
    let addr = server.local_addrs()[0];
    let irc = server.irc_addrs()[0];
    let port = irc.port().to_string();
    let mut tmux = Tmux::new();

    // irssi, told not to hold back its own commands (its default sends one each 2.2 s).
    tmux.irssi(
        "irssi",
        "settings = { \"irc/core\" = { cmd_queue_speed = \"0msec\"; cmds_max_at_once = \"100\"; }; \
         core = { real_name = \"irssi user\"; }; };\n",
        &["-c", "127.0.0.1", "-p", &port, "-n", "irssiuser"],
    );
    // WeeChat, likewise without its anti-flood delay.
    let setup = format!(
        "/set irc.server_default.anti_flood_prio_high 0;\
         /set irc.server_default.anti_flood_prio_low 0;\
         /server add natter 127.0.0.1/{port} -notls -nicks=weeuser -autojoin=#lobby;\
         /connect natter"
    );
    tmux.weechat(&setup);
    tmux.wait_line("irssi", &["Welcome to the natter IRC network"])
        .await;
    tmux.type_until("irssi", "/join #lobby", &["irssiuser", "has joined #lobby"])
        .await;
    tmux.wait_line("weechat", &["weeuser", "has joined #lobby"])
        .await;

    // The nc user is greeted into #lobby; the natter CLI joins it by default.
    let mut nc = Nc::connect(addr).await;
    let welcome = nc.expect(&["Welcome to natter, "]).await;
    let ncnick = welcome["Welcome to natter, ".len()..]
        .split('!')
        .next()
        .unwrap()
        .to_owned();
    let mut cli = Client::start("clia", addr, &[]);
    cli.expect_containing("-- you are in #lobby ").await;
    for joiner in [ncnick.as_str(), "clia"] {
        tmux.wait_line("irssi", &[joiner, "has joined #lobby"])
            .await;
        tmux.wait_line("weechat", &[joiner, "has joined #lobby"])
            .await;
    }

    // Messages, every way.
    tmux.type_until(
        "irssi",
        "hello from irssi",
        &["< irssiuser> hello from irssi"],
    )
    .await;
    tmux.wait_line("weechat", &["irssiuser", "hello from irssi"])
        .await;
    nc.expect(&["<irssiuser> hello from irssi"]).await;
    cli.expect("[#lobby] <irssiuser> hello from irssi").await;

    tmux.type_until(
        "weechat",
        "hello from weechat",
        &["weeuser", "hello from weechat"],
    )
    .await;
    tmux.wait_line("irssi", &["< weeuser> hello from weechat"])
        .await;
    nc.expect(&["<weeuser> hello from weechat"]).await;
    cli.expect("[#lobby] <weeuser> hello from weechat").await;

    nc.send("hello from nc").await;
    tmux.wait_line("irssi", &[&format!("< {ncnick}> hello from nc")])
        .await;
    tmux.wait_line("weechat", &[&ncnick, "hello from nc"]).await;
    cli.expect(&format!("[#lobby] <{ncnick}> hello from nc"))
        .await;

    cli.send("hello from the cli").await;
    tmux.wait_line("irssi", &["< clia> hello from the cli"])
        .await;
    tmux.wait_line("weechat", &["clia", "hello from the cli"])
        .await;
    nc.expect(&["<clia> hello from the cli"]).await;

    // WeeChat keeps a channel's buffer when it parts: back in, it shows what was said while it
    // was out, and nothing it showed already a second time (the join's replay of the room's
    // recent lines, a `chathistory` batch with server-time, starts after its part).
    tmux.type_line("weechat", "/part #lobby");
    tmux.wait_line("irssi", &["weeuser", "has left #lobby"])
        .await;
    nc.send("said while weechat was out").await;
    tmux.wait_line("irssi", &["said while weechat was out"])
        .await;
    tmux.type_line("weechat", "/join #lobby");
    tmux.wait_line("irssi", &["weeuser", "has joined #lobby"])
        .await;
    tmux.wait_line("weechat", &[&ncnick, "said while weechat was out"])
        .await;
    let screen = tmux.screen("weechat");
    for line in [
        "hello from irssi",
        "hello from weechat",
        "hello from nc",
        "hello from the cli",
        "said while weechat was out",
    ] {
        assert_eq!(
            screen.matches(line).count(),
            1,
            "weechat shows {line:?} once:\n{screen}"
        );
    }

    // Actions.
    tmux.type_line("irssi", "/me waves from irssi");
    tmux.wait_line("weechat", &["irssiuser waves from irssi"])
        .await;
    nc.expect(&["* irssiuser waves from irssi"]).await;
    cli.expect("[#lobby] * irssiuser waves from irssi").await;
    tmux.type_line("weechat", "/me nods from weechat");
    tmux.wait_line("irssi", &["* weeuser nods from weechat"])
        .await;
    nc.expect(&["* weeuser nods from weechat"]).await;
    cli.expect("[#lobby] * weeuser nods from weechat").await;
    nc.send("/me smiles from nc").await;
    tmux.wait_line("irssi", &[&format!("* {ncnick} smiles from nc")])
        .await;
    tmux.wait_line("weechat", &[&format!("{ncnick} smiles from nc")])
        .await;
    cli.send("/me bows from the cli").await;
    tmux.wait_line("irssi", &["* clia bows from the cli"]).await;
    tmux.wait_line("weechat", &["clia bows from the cli"]).await;
    nc.expect(&["* clia bows from the cli"]).await;

    // Notices stay notices, each client in its own words: WeeChat to the channel and to nicks
    // (nc, the CLI, irssi), irssi to the channel and to WeeChat.
    tmux.type_line("weechat", "/notice #lobby notice from weechat");
    tmux.wait_line("weechat", &["Notice -> #lobby: notice from weechat"])
        .await;
    tmux.wait_line("irssi", &["-weeuser:#lobby- notice from weechat"])
        .await;
    nc.expect(&["-weeuser- notice from weechat"]).await;
    cli.expect("[#lobby] -weeuser- notice from weechat").await;
    tmux.type_line("weechat", &format!("/notice {ncnick} to nc alone"));
    nc.expect(&["-weeuser- to nc alone"]).await;
    tmux.type_line("weechat", "/notice clia to the cli alone");
    cli.expect("-weeuser- to the cli alone").await;
    tmux.type_line("weechat", "/notice irssiuser to irssi alone");
    tmux.type_line("irssi", "/notice #lobby notice from irssi");
    tmux.wait_line("irssi", &["[notice(#lobby)] notice from irssi"])
        .await;
    tmux.wait_line("weechat", &["Notice(irssiuser): notice from irssi"])
        .await;
    nc.expect(&["-irssiuser- notice from irssi"]).await;
    cli.expect("[#lobby] -irssiuser- notice from irssi").await;
    tmux.type_line("irssi", "/notice weeuser to weechat alone");
    // A notice from a nick shows in irssi's status window and WeeChat's server buffer; each
    // shows its own sent notice there too, and the channel's windows come back after.
    tmux.type_line("irssi", "/window 1");
    tmux.wait_line("irssi", &["-weeuser(weeuser@natter)- to irssi alone"])
        .await;
    tmux.wait_line("irssi", &["[notice(weeuser)] to weechat alone"])
        .await;
    tmux.type_line("weechat", "/buffer natter");
    tmux.wait_line(
        "weechat",
        &["irssiuser (irssiuser@natter): to weechat alone"],
    )
    .await;
    tmux.wait_line("weechat", &["Notice -> irssiuser: to irssi alone"])
        .await;
    tmux.type_line("irssi", "/window 2");
    tmux.type_line("weechat", "/buffer #lobby");
    // Each notice shows once, and nothing asked for an answer.
    for (pane, line) in [
        ("irssi", "notice from weechat"),
        ("irssi", "notice from irssi"),
        ("weechat", "notice from weechat"),
        ("weechat", "notice from irssi"),
    ] {
        // (Waiting for the line shows the channel's window is back.)
        tmux.wait_line(pane, &[line]).await;
        let screen = tmux.screen(pane);
        assert_eq!(
            screen.matches(line).count(),
            1,
            "{pane} shows {line:?} once:\n{screen}"
        );
    }

    // Topics.
    tmux.type_line("weechat", "/topic set in weechat");
    tmux.wait_line(
        "irssi",
        &["weeuser changed the topic of #lobby to: set in weechat"],
    )
    .await;
    nc.expect(&["-- weeuser set the topic of #lobby: set in weechat"])
        .await;
    cli.expect("[#lobby] -- weeuser set the topic of #lobby: set in weechat")
        .await;
    nc.send("/topic #lobby set on nc").await;
    tmux.wait_line(
        "irssi",
        &[&format!(
            "{ncnick} changed the topic of #lobby to: set on nc"
        )],
    )
    .await;
    tmux.wait_line("weechat", &[&ncnick, "changed topic", "set on nc"])
        .await;
    cli.expect(&format!(
        "[#lobby] -- {ncnick} set the topic of #lobby: set on nc"
    ))
    .await;
    // Cleared: WeeChat's `/topic -delete` sends `TOPIC #lobby :`.
    tmux.type_line("weechat", "/topic -delete");
    tmux.wait_line("irssi", &["Topic unset by", "weeuser"])
        .await;
    nc.expect(&["-- weeuser cleared the topic of #lobby"]).await;
    cli.expect("[#lobby] -- weeuser cleared the topic of #lobby")
        .await;

    // Parts and joins.
    tmux.type_line("irssi", "/part #lobby off for tea");
    tmux.wait_line("weechat", &["irssiuser", "has left #lobby", "off for tea"])
        .await;
    nc.expect(&["-- irssiuser left #lobby (off for tea)"]).await;
    cli.expect("[#lobby] -- irssiuser left #lobby (off for tea)")
        .await;
    cli.send("said while irssi was out").await;
    tmux.wait_line("weechat", &["clia", "said while irssi was out"])
        .await;
    tmux.type_line("irssi", "/join #lobby");
    tmux.wait_line("weechat", &["irssiuser", "has joined #lobby"])
        .await;
    nc.expect(&["-- irssiuser joined #lobby"]).await;
    cli.expect("[#lobby] -- irssiuser joined #lobby").await;
    // irssi closed the window at its part: the new one shows what was said while it was out
    // (and not what its old window had: the notices above, shown once there, are not back).
    tmux.wait_line("irssi", &["< clia> said while irssi was out"])
        .await;
    let screen = tmux.screen("irssi");
    assert!(
        !screen.contains("notice from weechat"),
        "irssi's new window shows only what it missed:\n{screen}"
    );

    // Nick changes, from IRC and from natter.
    tmux.type_line("irssi", "/nick irssi2");
    tmux.wait_line("irssi", &["You're now known as irssi2"])
        .await;
    tmux.wait_line("weechat", &["irssiuser", "is now known as", "irssi2"])
        .await;
    nc.expect(&["-- irssiuser is now known as irssi2"]).await;
    cli.expect("[#lobby] -- irssiuser is now known as irssi2")
        .await;
    nc.send("/nick ncnew").await;
    tmux.wait_line("irssi", &[&ncnick, "is now known as ncnew"])
        .await;
    tmux.wait_line("weechat", &[&ncnick, "is now known as", "ncnew"])
        .await;
    cli.expect(&format!("[#lobby] -- {ncnick} is now known as ncnew"))
        .await;

    // And they still talk under their new names.
    tmux.type_line("irssi", "renamed and still here");
    tmux.wait_line("weechat", &["irssi2", "renamed and still here"])
        .await;
    nc.expect(&["<irssi2> renamed and still here"]).await;
    cli.expect("[#lobby] <irssi2> renamed and still here").await;

    // A quit reaches the IRC clients too.
    cli.close_stdin();
    tmux.wait_line("irssi", &["clia", "has quit"]).await;
    tmux.wait_line("weechat", &["clia", "has quit"]).await;
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weechat_signs_in_with_sasl_as_an_account_registered_on_nc() {
    let mut config = ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    // dora is a server admin too: WeeChat's `/kill` is tried below.
    config.hub.accounts.admins = vec![natter_core::Nick::new("dora").expect("a nick")];
    let most = config.hub.max_room_members;
    let server = natter_server::start(config).await.expect("server starts");
    let addr = server.local_addrs()[0];
    let port = server.irc_addrs()[0].port().to_string();
    let mut tmux = Tmux::new();

    // The account is registered from nc, which stays signed in.
    let mut nc = Nc::connect(addr).await;
    nc.send("/nick dora").await;
    nc.expect(&["you are now known as dora"]).await;
    nc.send("/register sasl-passphrase").await;
    nc.expect(&["you are signed in as dora"]).await;

    let setup = format!(
        "/set irc.server_default.anti_flood_prio_high 0;\
         /set irc.server_default.anti_flood_prio_low 0;\
         /server add natter 127.0.0.1/{port} -notls -nicks=somebody -autojoin=#lobby;\
         /set irc.server.natter.sasl_mechanism plain;\
         /set irc.server.natter.sasl_username dora;\
         /set irc.server.natter.sasl_password sasl-passphrase;\
         /set irc.server.natter.realname Dora Explorer;\
         /connect natter"
    );
    tmux.weechat(&setup);
    // Registered as the account, not as the nick it asked for (`somebody`), and in the
    // account's rooms; extended-join shows the account in brackets and its USER's real name.
    // (WeeChat says "SASL authentication successful" in its server buffer.)
    tmux.wait_line(
        "weechat",
        &["dora [dora] (Dora Explorer) (dora@natter) has joined #lobby"],
    )
    .await;
    tmux.type_until(
        "weechat",
        "hello as dora from weechat",
        &["hello as dora from weechat"],
    )
    .await;
    // nc is the same account: it sees its own words from the other connection.
    nc.expect(&["<dora> hello as dora from weechat"]).await;
    nc.send("and back from nc").await;
    tmux.wait_line("weechat", &["dora", "and back from nc"])
        .await;

    // Moderation as WeeChat sends it: `/mode +r` registers the channel (dora, signed in, is
    // its founder) and `/ban NICK` sends a `*!ident@host` mask, which here is that nick.
    let mut eve = Nc::connect(addr).await;
    eve.send("/nick evelyn").await;
    eve.expect(&["you are now known as evelyn"]).await;
    eve.send("/join #mod").await;
    eve.expect(&["you are in #mod"]).await;
    let mut fred = Nc::connect(addr).await;
    fred.send("/nick fred").await;
    fred.expect(&["you are now known as fred"]).await;
    fred.send("/join #mod").await;
    fred.expect(&["you are in #mod"]).await;
    tmux.type_until("weechat", "/join #mod", &["dora", "has joined #mod"])
        .await;
    tmux.type_until("weechat", "/mode +r", &["Mode #mod [+r] by dora"])
        .await;
    tmux.type_until(
        "weechat",
        "/ban evelyn",
        &["Mode #mod [+b evelyn!*@*] by dora"],
    )
    .await;
    eve.expect(&["dora put you out of #mod (banned)"]).await;
    eve.send("/join #mod").await;
    eve.expect(&["ERROR: you are banned from #mod"]).await;
    // The ban list says who set each ban and when (WeeChat words 367's time as a date).
    tmux.type_until(
        "weechat",
        "/mode +b",
        &["evelyn!*@* banned by dora on ", " 20"],
    )
    .await;
    // The ban is shown as an IRC mask, so WeeChat's `/unban 1` (the first of the list it was
    // sent) lifts it, and evelyn may come back.
    tmux.type_until(
        "weechat",
        "/unban 1",
        &["Mode #mod [-b evelyn!*@*] by dora"],
    )
    .await;
    eve.send("/join #mod").await;
    eve.expect(&["you are in #mod"]).await;
    // WeeChat's /kickban (MODE +b, then KICK): the KICK's reason reaches evelyn and the room
    // (the ban put her out first as "banned" until the forty-third session).
    tmux.type_until(
        "weechat",
        "/kickban evelyn calm down",
        &["dora has kicked evelyn (calm down)"],
    )
    .await;
    eve.expect(&["dora put you out of #mod (calm down)"]).await;
    // The founder sees the key in the MODE line; a limit past the largest room is that.
    tmux.type_until(
        "weechat",
        "/mode +k sesame",
        &["Mode #mod [+k sesame] by dora"],
    )
    .await;
    let capped = format!("Mode #mod [+l {most}] by dora");
    tmux.type_until("weechat", "/mode +l 99999999999", &[&capped])
        .await;
    // An admin's kill: the channel sees the quit as IRC servers word it, and fred is told.
    tmux.type_until(
        "weechat",
        "/kill fred spam",
        &["fred", "has quit (Killed (dora (spam)))"],
    )
    .await;
    fred.expect(&["Killed (dora (spam))"]).await;
    drop(tmux);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irssi_and_weechat_over_tls_verify_the_certificate_and_chat_with_nc() {
    let pki = tempfile::tempdir().expect("a directory for the certificates");
    let ca = natter_tls::dev_ca::DevCa::new("natter irssi test CA").expect("a CA");
    let (cert, key) = ca
        .leaf(&["localhost", "127.0.0.1"])
        .expect("a certificate")
        .write(pki.path())
        .expect("write the certificate");
    let ca_file = pki.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write the CA");
    let mut config = ServerConfig::local_test();
    config.irc_tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.tls_certs = Some(natter_server::TlsCerts { cert, key });
    let server = natter_server::start(config).await.expect("server starts");
    let addr = server.local_addrs()[0];
    let port = server.irc_tls_addrs()[0].port();
    let mut tmux = Tmux::new();

    // irssi connects by itself to the configured server: TLS, verified against `ca_file`.
    let irssi_config = |ca_file: &std::path::Path| {
        format!(
            "servers = ( {{ address = \"localhost\"; chatnet = \"natter\"; port = \"{port}\"; \
             use_tls = \"yes\"; tls_verify = \"yes\"; tls_cafile = \"{}\"; \
             autoconnect = \"yes\"; }} );\n\
             chatnets = {{ natter = {{ type = \"IRC\"; }}; }};\n\
             settings = {{ \"irc/core\" = {{ cmd_queue_speed = \"0msec\"; }}; \
             core = {{ real_name = \"irssi over tls\"; resolve_prefer_ipv6 = \"no\"; }}; }};\n",
            ca_file.display()
        )
    };
    // Trusting another CA, irssi refuses the server's certificate and never registers.
    let other = natter_tls::dev_ca::DevCa::new("some other CA").expect("a CA");
    let other_file = pki.path().join("other.pem");
    std::fs::write(&other_file, other.cert_pem()).expect("write the other CA");
    tmux.irssi("doubter", &irssi_config(&other_file), &["-n", "doubter"]);
    tmux.wait_line("doubter", &["Could not verify TLS servers certificate"])
        .await;
    let refusal = tmux
        .wait_line("doubter", &["Connection lost to localhost"])
        .await;
    assert!(
        !tmux.screen("doubter").contains("Welcome to the natter"),
        "{refusal}"
    );

    // With TLS off for the TLS port, irssi is told so in words (not a TLS alert's junk).
    let plain_config = irssi_config(&ca_file).replace("use_tls = \"yes\"", "use_tls = \"no\"");
    tmux.irssi("plain", &plain_config, &["-n", "plain"]);
    tmux.wait_line(
        "plain",
        &["this port speaks TLS: turn TLS on for this server in your IRC client"],
    )
    .await;
    assert!(!tmux.screen("plain").contains("Welcome to the natter"));

    tmux.irssi("irssi", &irssi_config(&ca_file), &["-n", "tlsirssi"]);
    tmux.wait_line("irssi", &["Welcome to the natter IRC network"])
        .await;
    tmux.type_until("irssi", "/join #lobby", &["tlsirssi", "has joined #lobby"])
        .await;

    let mut nc = Nc::connect(addr).await;
    let welcome = nc.expect(&["Welcome to natter, "]).await;
    let ncnick = welcome["Welcome to natter, ".len()..]
        .split('!')
        .next()
        .unwrap()
        .to_owned();
    tmux.wait_line("irssi", &[&ncnick, "has joined #lobby"])
        .await;
    tmux.type_until("irssi", "hello over tls", &["< tlsirssi> hello over tls"])
        .await;
    nc.expect(&["<tlsirssi> hello over tls"]).await;
    nc.send("hello back in clear").await;
    tmux.wait_line("irssi", &[&format!("< {ncnick}> hello back in clear")])
        .await;

    // WeeChat too, trusting the CA through its own setting. (WeeChat 4 renamed `-ssl` `-tls`.)
    let version = Command::new("/usr/bin/weechat")
        .arg("--version")
        .output()
        .expect("weechat --version");
    let major: u32 = String::from_utf8_lossy(&version.stdout)
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .expect("a WeeChat version");
    let tls_flag = if major >= 4 { "-tls" } else { "-ssl" };
    let setup = format!(
        "/set irc.server_default.anti_flood_prio_high 0;\
         /set irc.server_default.anti_flood_prio_low 0;\
         /set weechat.network.gnutls_ca_system off;\
         /set weechat.network.gnutls_ca_user {};\
         /server add natter localhost/{port} {tls_flag} -nicks=weetls -autojoin=#lobby;\
         /connect natter",
        ca_file.display()
    );
    tmux.weechat(&setup);
    tmux.wait_line("weechat", &["weetls", "has joined #lobby"])
        .await;
    tmux.wait_line("irssi", &["weetls", "has joined #lobby"])
        .await;
    tmux.type_until(
        "weechat",
        "weechat over tls",
        &["weetls", "weechat over tls"],
    )
    .await;
    tmux.wait_line("irssi", &["< weetls> weechat over tls"])
        .await;
    nc.expect(&["<weetls> weechat over tls"]).await;
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// An IRC connection on its own (a raw client) registered as `nick` with `USER user`.
async fn raw_irc(irc: SocketAddr, nick: &str, user: &str) -> Nc {
    let mut c = Nc::connect(irc).await;
    c.send(&format!("NICK {nick}\r\nUSER {user} 0 * :{nick} by hand"))
        .await;
    c.expect(&[&format!(" 001 {nick} ")]).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irssi_bans_the_nick_its_whox_showed_not_the_one_named_like_the_user() {
    let mut config = ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let server = natter_server::start(config).await.expect("server starts");
    let addr = server.local_addrs()[0];
    let irc = server.irc_addrs()[0];
    let mut tmux = Tmux::new();

    // dora's account, registered on nc: irssi signs in to it with SASL, so it may moderate.
    let mut nc = Nc::connect(addr).await;
    nc.send("/nick dora").await;
    nc.expect(&["you are now known as dora"]).await;
    nc.send("/register sasl-passphrase").await;
    nc.expect(&["you are signed in as dora"]).await;

    // alice says `USER root`; root is someone else. Both are in #mod before irssi comes, so
    // the WHOX irssi runs at its join tells it their user names.
    let mut alice = raw_irc(irc, "alice", "root").await;
    let mut root = raw_irc(irc, "root", "someone").await;
    let mut carol = raw_irc(irc, "carol", "carol").await;
    for (c, nick) in [
        (&mut alice, "alice"),
        (&mut root, "root"),
        (&mut carol, "carol"),
    ] {
        c.send("JOIN #mod").await;
        c.expect(&[&format!(" 366 {nick} #mod ")]).await;
    }

    // irssi as README says: a network with SASL PLAIN, here written in its config.
    tmux.irssi(
        "irssi",
        &format!(
            "servers = ( {{ address = \"127.0.0.1\"; chatnet = \"natter\"; port = \"{}\"; \
             autoconnect = \"yes\"; }} );\n\
             chatnets = {{ natter = {{ type = \"IRC\"; sasl_mechanism = \"PLAIN\"; \
             sasl_username = \"dora\"; sasl_password = \"sasl-passphrase\"; }}; }};\n\
             settings = {{ \"irc/core\" = {{ cmd_queue_speed = \"0msec\"; \
             cmds_max_at_once = \"100\"; }}; core = {{ real_name = \"irssi user\"; }}; }};\n",
            irc.port()
        ),
        &["-n", "irssidora"],
    );
    tmux.wait_line("irssi", &["SASL authentication succeeded"])
        .await;
    tmux.wait_line(
        "irssi",
        &["Welcome to the natter IRC network, dora!dora@natter"],
    )
    .await;
    tmux.type_until("irssi", "/join #mod", &["dora", "has joined #mod"])
        .await;
    // irssi's join is synced once its WHOX (and MODE) came back: it knows every user name.
    tmux.wait_line("irssi", &["Join to #mod was synced"]).await;
    tmux.type_until("irssi", "/mode +r", &["mode/#mod [+r] by dora"])
        .await;
    // irssi builds `*!*alice@natter` from its WHOX: that is alice, not root.
    tmux.type_until("irssi", "/ban alice", &["mode/#mod [+b alice!*@*] by dora"])
        .await;
    tmux.wait_line("irssi", &["alice was kicked from #mod by dora [banned]"])
        .await;
    alice.expect(&["KICK #mod alice :banned"]).await;
    alice.send("JOIN #mod").await;
    alice.expect(&[" 474 alice #mod "]).await;
    // root is neither put out nor kept out: it talks in #mod, parts and comes back.
    root.send("PRIVMSG #mod :root is still here").await;
    tmux.wait_line("irssi", &["< root> root is still here"])
        .await;
    root.send("PART #mod\r\nJOIN #mod").await;
    root.expect(&[" 366 root #mod "]).await;
    assert!(
        !root
            .seen
            .iter()
            .any(|l| l.contains(" KICK #mod root ") || l.contains(" 474 root ")),
        "root was banned: {:#?}",
        root.seen
    );
    assert!(
        !tmux.screen("irssi").contains("root!*@*"),
        "{}",
        tmux.screen("irssi")
    );
    // irssi's /kickban bans, then kicks: the KICK puts carol out with its reason, for irssi
    // and for carol (the ban put her out first as "banned", and the reason reached nobody;
    // before that the KICK was `441 They aren't on that channel`, in the status window).
    tmux.type_until(
        "irssi",
        "/kickban carol bye now",
        &["carol was kicked from #mod by dora [bye now]"],
    )
    .await;
    carol.expect(&["KICK #mod carol :bye now"]).await;
    root.send("PRIVMSG #mod :after the kickban").await;
    tmux.wait_line("irssi", &["< root> after the kickban"])
        .await;
    tmux.type_line("irssi", "/window 1");
    tmux.wait_line("irssi", &["[(status)]"]).await;
    let status = tmux.screen("irssi");
    assert!(
        !status.contains("aren't on that channel"),
        "irssi's status window:\n{status}"
    );
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// A server keeping its rooms in `dir`, on natter's `addr` and, if given, the IRC address
/// `irc` (port 0: any), retrying while a stopped server's port is still being let go.
async fn stored_server(
    dir: &std::path::Path,
    addr: SocketAddr,
    irc: Option<SocketAddr>,
) -> natter_server::Server {
    let mut config = ServerConfig::local_test();
    config.listen = vec![addr];
    config.irc_listen = irc.into_iter().collect();
    config.store = Some(natter_store::Config::new(dir));
    support::start_retrying(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irssi_and_weechat_come_back_by_themselves_after_a_restart_and_see_what_they_missed() {
    let dir = tempfile::tempdir().expect("a data directory");
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = stored_server(dir.path(), any, Some(any)).await;
    let addr = server.local_addrs()[0];
    let irc = server.irc_addrs()[0];
    let port = irc.port().to_string();
    let mut tmux = Tmux::new();

    // Both clients reconnect a second after a drop (irssi waits 5 minutes by default, WeeChat
    // 10 seconds, longer each time).
    tmux.irssi(
        "irssi",
        &format!(
            "servers = ( {{ address = \"127.0.0.1\"; chatnet = \"natter\"; port = \"{port}\"; \
             autoconnect = \"yes\"; }} );\n\
             chatnets = {{ natter = {{ type = \"IRC\"; }}; }};\n\
             settings = {{ \"irc/core\" = {{ cmd_queue_speed = \"0msec\"; \
             cmds_max_at_once = \"100\"; }}; core = {{ real_name = \"irssi user\"; \
             server_reconnect_time = \"1s\"; }}; }};\n"
        ),
        &["-n", "irssiuser"],
    );
    let setup = format!(
        "/set irc.server_default.anti_flood_prio_high 0;\
         /set irc.server_default.anti_flood_prio_low 0;\
         /set irc.server_default.autoreconnect_delay 1;\
         /set irc.server_default.autoreconnect_delay_growing 1;\
         /server add natter 127.0.0.1/{port} -notls -nicks=weeuser;\
         /connect natter"
    );
    tmux.weechat(&setup);
    tmux.wait_line("irssi", &["Welcome to the natter IRC network"])
        .await;
    tmux.wait_line("weechat", &["Welcome to the natter IRC network"])
        .await;
    // Each joins two channels by hand: nothing in their configurations names them.
    for (pane, nick) in [("irssi", "irssiuser"), ("weechat", "weeuser")] {
        tmux.type_until(pane, "/join #lobby", &[nick, "has joined #lobby"])
            .await;
        tmux.type_until(pane, "/join #back", &[nick, "has joined #back"])
            .await;
    }
    let mut nc = Nc::connect(addr).await;
    nc.send("/join #back").await;
    nc.expect(&["you are in #back"]).await;
    nc.send("said before the restart").await;
    tmux.wait_line("irssi", &["said before the restart"]).await;
    tmux.wait_line("weechat", &["said before the restart"])
        .await;

    // The server stops, and starts again on its store without its IRC listener: the IRC
    // clients cannot come back yet, and an nc user says something in #back meanwhile.
    server.shutdown().await.expect("server shuts down");
    tmux.wait_line("weechat", &["disconnected from server"])
        .await;
    let server = stored_server(dir.path(), addr, None).await;
    let mut nc = Nc::connect(addr).await;
    nc.send("/join #back").await;
    nc.expect(&["<", "said before the restart"]).await;
    nc.send("said while they were away").await;
    // (Its last line is in the store once a later command is answered.)
    nc.send("/join #lobby").await;
    nc.expect(&["you are now talking in #lobby"]).await;
    server.shutdown().await.expect("server shuts down");

    // Back with its IRC listener: irssi and WeeChat reconnect by themselves, join both
    // channels again, and are shown what was said while they were away, once, and nothing
    // they showed before a second time.
    let server = stored_server(dir.path(), addr, Some(irc)).await;
    for pane in ["irssi", "weechat"] {
        tmux.wait_line(pane, &["said while they were away"]).await;
    }
    // Back in #lobby too: an nc user greeted into it finds them there, or sees them come.
    let mut nc = Nc::connect(addr).await;
    let members = nc.expect(&["you are in #lobby"]).await;
    for nick in ["irssiuser", "weeuser"] {
        if !members.contains(nick) {
            nc.expect(&[nick, "joined #lobby"]).await;
        }
    }
    for pane in ["irssi", "weechat"] {
        let screen = tmux.screen(pane);
        for line in ["said before the restart", "said while they were away"] {
            assert_eq!(
                screen.matches(line).count(),
                1,
                "{pane} shows {line:?} once:\n{screen}"
            );
        }
    }
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}
