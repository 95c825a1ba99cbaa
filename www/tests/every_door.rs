//! Every door in one room at once, on a deployment set up as README's operator sections say:
//! natter-server (the binary) with a config file naming a durable store, accounts (an admin
//! made beforehand with `natter-server account add`, registration open), TLS on natter's port
//! and IRC's, a plain IRC listener and metrics; natter-bridge serving the page over https and
//! reaching the server over TLS. In `#deploy` (registered by the page: `#lobby` belongs to
//! everyone) together: irssi over IRC TLS and WeeChat over plain IRC (in tmux), the page in
//! headless Chromium over wss (registered, remembered), the `natter` TUI in tmux over TLS
//! (signed in as the admin; the CLI keeps no device key), `natter` in line mode and a person on
//! nc. Everyone sees everyone's lines and actions; topics, an away, a nick change, a part and a
//! join, a kick by the room's founder (the page) go round; direct messages cross doors (IRC to
//! the page, the page to nc, the CLI to irssi); a line said while WeeChat was out comes with its
//! rejoin; the CLI and the page search; the server stops on SIGTERM (nc's and IRC's people said
//! to quit, since they cannot resume) and starts again on its store, natter's clients resuming
//! and the IRC clients coming back; SIGHUP swaps the certificate with everyone connected, and a
//! client trusting only the new one's CA gets in; `/metrics` and `/readyz` answer.
//! (Each door on its own, in more depth: `native-client/tests/irc_clients.rs`, `tui.rs`, and
//! this directory's other tests.)
//!
//! Needs the built page (`cargo xtask web`), Chromium, chromedriver, tmux, irssi and WeeChat:
//! `cargo xtask test` installs them.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use natter_tls::dev_ca::DevCa;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::timeout;

/// The whole scenario must finish within this (it takes about 15 s; a hung client must not
/// hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// One thing showing on one client's screen or output.
const SEE: Duration = Duration::from_secs(20);

const ROOM: &str = "#deploy";
const WEBBY_PASSWORD: &str = "webby's long password";
const ADMIN_PASSWORD: &str = "the admin's password";

/// A private tmux server for irssi, WeeChat and the TUI, killed (with them) on drop.
struct Tmux {
    socket: String,
    conf: PathBuf,
}

impl Tmux {
    fn new() -> Tmux {
        let socket = format!("natter-every-door-{}", std::process::id());
        let conf = std::env::temp_dir().join(format!("{socket}.conf"));
        std::fs::write(&conf, "set -g status off\nset -g history-limit 5000\n")
            .expect("write tmux config");
        Tmux { socket, conf }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("tmux runs (`cargo xtask test` installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `program args...` in a new 160x50 session called `name`.
    fn start(&self, name: &str, program: &str, args: &[&str]) {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: `cargo xtask test` installs it"
        );
        let mut cmd = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "160",
            "-y",
            "50",
            program,
        ];
        cmd.extend_from_slice(args);
        self.run(&cmd);
    }

    fn type_line(&self, target: &str, text: &str) {
        self.run(&["send-keys", "-t", target, "-l", text]);
        self.run(&["send-keys", "-t", target, "Enter"]);
    }

    fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", target])
    }

    /// The line of `target`'s screen holding every one of `parts`, if one does.
    fn line(&self, target: &str, parts: &[&str]) -> Option<String> {
        self.screen(target)
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
    }

    /// Waits until a line of `target`'s screen holds every one of `parts`.
    async fn wait_line(&self, target: &str, parts: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + SEE;
        loop {
            if let Some(line) = self.line(target, parts) {
                return line;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{target}: no line with {parts:?} within {SEE:?}; screen:\n{}",
                    self.screen(target)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` until a line with every one of `parts` shows: a terminal program may drop
    /// keys that arrive while it sets up its terminal (twice at most).
    async fn type_until(&self, target: &str, text: &str, parts: &[&str]) -> String {
        for _ in 0..2 {
            self.type_line(target, text);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline {
                if let Some(line) = self.line(target, parts) {
                    return line;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.wait_line(target, parts).await
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
        // irssi and WeeChat write their configuration on the way out: their homes (in the
        // site's directory) go once they are gone (bounded).
        let _ = tmux(&["kill-server"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(path) = socket_path.filter(|p| !p.is_empty()) {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&self.conf);
    }
}

/// Free ports on 127.0.0.1 for the config file (held together, so all differ, then let go).
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("bound").port())
}

/// The deployment's files: the certificates, the config file, the store.
struct Site {
    dir: TempDir,
    config: PathBuf,
    /// Both CAs (the first certificate's and the one SIGHUP brings in): what clients trust.
    trust: PathBuf,
    /// The second CA alone.
    ca2: PathBuf,
    plain: u16,
    irc: u16,
    tls: u16,
    irc_tls: u16,
    metrics: u16,
}

impl Site {
    fn new(ca1: &DevCa, ca2: &DevCa) -> Site {
        let dir = TempDir::new("natter-every-door");
        let (cert, key) = ca1
            .leaf(&["localhost", "127.0.0.1"])
            .expect("a certificate")
            .write(&dir.0)
            .expect("write it");
        let trust = dir.0.join("trust.pem");
        std::fs::write(&trust, format!("{}{}", ca1.cert_pem(), ca2.cert_pem()))
            .expect("write the CAs");
        let ca2_file = dir.0.join("ca2.pem");
        std::fs::write(&ca2_file, ca2.cert_pem()).expect("write the second CA");
        let [plain, irc, tls, irc_tls, metrics] = free_ports::<5>();
        let config = dir.0.join("natter.toml");
        // As README's operator would write it: every listener, the certificate, metrics, the
        // admin, open registration and the store (a cheap hash: the code path is the same).
        std::fs::write(
            &config,
            format!(
                "listen = [\"127.0.0.1:{plain}\"]\n\
                 irc_listen = [\"127.0.0.1:{irc}\"]\n\
                 tls_listen = [\"127.0.0.1:{tls}\"]\n\
                 irc_tls_listen = [\"127.0.0.1:{irc_tls}\"]\n\
                 tls_cert = {cert:?}\n\
                 tls_key = {key:?}\n\
                 metrics_listen = \"127.0.0.1:{metrics}\"\n\
                 shutdown_grace_ms = 3000\n\
                 motd = \"Welcome to the every-door test.\"\n\
                 [accounts]\n\
                 registration = \"open\"\n\
                 admins = [\"admin\"]\n\
                 hash_cost = {{ memory_kib = 64, iterations = 1 }}\n\
                 [store]\n\
                 data_dir = {data:?}\n",
                data = dir.0.join("data"),
            ),
        )
        .expect("write the config file");
        Site {
            config,
            trust,
            ca2: ca2_file,
            plain,
            irc,
            tls,
            irc_tls,
            metrics,
            dir,
        }
    }

    fn addr(&self, port: u16) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }
}

/// natter-server started by its binary with the site's config file, as an operator does;
/// returns once its plain port answers. Its stderr (the log) is captured.
async fn start_server(site: &Site) -> (tokio::process::Child, Captured) {
    let mut child = tokio::process::Command::new(workspace_bin("natter-server").await)
        .arg("--config")
        .arg(&site.config)
        .env("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start natter-server");
    let log = capture(child.stderr.take().expect("piped stderr"));
    let addr = site.addr(site.plain);
    wait_for!(
        format!("natter-server to listen; its log: {:#?}", log.lines()),
        tokio::net::TcpStream::connect(addr).await.ok()
    );
    (child, log)
}

/// `natter --lines` with `args`, its stdout captured.
async fn line_client(args: &[&str], config_home: &Path) -> Cli {
    let mut child = tokio::process::Command::new(workspace_bin("natter").await)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("NATTER_PASSWORD")
        .env("XDG_CONFIG_HOME", config_home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start natter");
    let stdin = child.stdin.take().expect("piped stdin");
    let out = capture(child.stdout.take().expect("piped stdout"));
    Cli { child, stdin, out }
}

/// The people on nc: a connection and what it was sent.
struct Nc {
    write: OwnedWriteHalf,
    out: Captured,
}

impl Nc {
    async fn say(&mut self, line: &str) {
        timeout(STEP, self.write.write_all(format!("{line}\r\n").as_bytes()))
            .await
            .expect("write in time")
            .expect("write to the server");
    }
}

/// Waits until some captured line holds every one of `parts`.
async fn sees(what: &str, out: &Captured, parts: &[&str]) {
    wait_for!(
        format!("{what} to see {parts:?}; it saw {:#?}", out.lines()),
        SEE,
        out.lines()
            .iter()
            .any(|l| parts.iter().all(|p| l.contains(p)))
            .then_some(())
    );
}

/// Waits until nc (`out`) knows `who` is in #deploy: named in its join's member list if it
/// was there first (nc's join replays the room's lines, not its comings and goings), else
/// seen joining.
async fn nc_sees_member(what: &str, out: &Captured, who: &str) {
    wait_for!(
        format!("{what} to see {who} in #deploy; it saw {:#?}", out.lines()),
        SEE,
        out.lines()
            .iter()
            .any(|l| {
                (l.contains(who) && l.contains("joined #deploy"))
                    || (l.starts_with("-- you are in #deploy with:") && l.contains(who))
            })
            .then_some(())
    );
}

/// Waits until a line of the page's conversation `conv` holds every one of `parts`.
async fn page_sees(b: &Browser, conv: &str, parts: &[&str]) {
    let deadline = std::time::Instant::now() + SEE;
    loop {
        let last = log_of(b, conv).await;
        if last.iter().any(|l| parts.iter().all(|p| l.contains(p))) {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("the page's {conv}: no line with {parts:?} within {SEE:?}; it shows {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `GET` of `path` on `addr`: the whole answer as text.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut s = timeout(STEP, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send the request");
    let mut body = String::new();
    timeout(STEP, s.read_to_string(&mut body))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    body
}

/// Everything the scenario drives (the tmux server first: it goes before the homes in `site`).
struct Room {
    tmux: Tmux,
    site: Site,
    b: Browser,
    cli: Cli,
    nc: Nc,
    cli_home: TempDir,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_door_in_one_room_on_a_deployment_with_every_feature_on() {
    let www = www_dir();
    let ca1 = DevCa::new("natter every-door CA").expect("a CA");
    let ca2 = DevCa::new("natter every-door second CA").expect("a CA");
    let site = Site::new(&ca1, &ca2);

    // The operator makes the admin account before the first start (README, "Managing accounts").
    let pw_file = site.dir.0.join("admin-password");
    std::fs::write(&pw_file, format!("{ADMIN_PASSWORD}\n")).expect("write the password file");
    let made = tokio::process::Command::new(workspace_bin("natter-server").await)
        .arg("account")
        .arg("--config")
        .arg(&site.config)
        .args(["add", "admin", "--password-file"])
        .arg(&pw_file)
        .output()
        .await
        .expect("natter-server account add runs");
    assert!(
        made.status.success(),
        "account add: {}{}",
        String::from_utf8_lossy(&made.stdout),
        String::from_utf8_lossy(&made.stderr)
    );

    let (server, log) = start_server(&site).await;

    // The bridge: the page over https, the server reached over TLS, trusting the site's CAs.
    let bridge_leaf = ca1
        .leaf(&["127.0.0.1", "localhost"])
        .expect("a certificate");
    let bridge_dir = site.dir.0.join("bridge");
    std::fs::create_dir_all(&bridge_dir).expect("a directory for the bridge");
    let (bcert, bkey) = bridge_leaf.write(&bridge_dir).expect("write it");
    let mut bc = natter_bridge::BridgeConfig::local_test(site.addr(site.tls), www);
    bc.tls = Some(natter_bridge::TlsFiles {
        cert: bcert,
        key: bkey,
    });
    bc.server_tls = Some(natter_bridge::ServerTls {
        trust: natter_tls::Trust::CaFile(site.trust.clone()),
        name: "localhost".into(),
    });
    let bridge = natter_bridge::start(bc).await.expect("start natter-bridge");
    let page = format!("https://{}/", bridge.local_addr());

    let (driver, port) = start_chromedriver();
    let profile = TempDir::new("natter-every-door-chromium");
    let b = open_browser(
        port,
        &profile.0,
        &[format!(
            "--ignore-certificate-errors-spki-list={}",
            bridge_leaf.spki_sha256_base64()
        )],
    )
    .await;

    let mut task = tokio::spawn(scenario(b.clone(), page, site, ca2, server));
    let outcome = timeout(SCENARIO_LIMIT, &mut task).await;
    task.abort();
    let _ = timeout(Duration::from_secs(10), b.close()).await;
    drop(driver);
    let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => {
            eprintln!(
                "natter-server's log (first start):\n{}",
                log.lines().join("\n")
            );
            std::panic::resume_unwind(e.into_panic())
        }
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => panic!("the scenario did not finish within {SCENARIO_LIMIT:?}"),
    }
}

async fn scenario(
    b: Browser,
    page: String,
    site: Site,
    ca2: DevCa,
    mut server: tokio::process::Child,
) {
    // The page registers webby (remembered) and is the first in #deploy to register it: its
    // founder.
    open_and_register_remembered(&b, &page, "webby", WEBBY_PASSWORD).await;
    wait_for!(
        "the page to connect, registered",
        (conn_state(&b).await == "connected").then_some(())
    );
    page_sees(&b, "#lobby", &["you are in #lobby"]).await;
    type_line(&b, "/join #deploy").await;
    page_sees(&b, ROOM, &["you are in #deploy"]).await;
    type_line(&b, "/register #deploy").await;
    page_sees(&b, ROOM, &["#deploy is registered to webby"]).await;

    // irssi over IRC TLS, verifying the certificate against the site's CAs, back by itself
    // a second after the server goes; WeeChat over plain IRC, likewise.
    let tmux = Tmux::new();
    let irssi_home = site.dir.0.join("irssi");
    std::fs::create_dir_all(&irssi_home).expect("irssi's home");
    std::fs::write(
        irssi_home.join("config"),
        format!(
            "servers = ( {{ address = \"localhost\"; chatnet = \"natter\"; port = \"{}\"; \
             use_tls = \"yes\"; tls_verify = \"yes\"; tls_cafile = \"{}\"; \
             autoconnect = \"yes\"; }} );\n\
             chatnets = {{ natter = {{ type = \"IRC\"; }}; }};\n\
             channels = ( {{ name = \"#deploy\"; chatnet = \"natter\"; autojoin = \"yes\"; }} );\n\
             settings = {{ \"irc/core\" = {{ cmd_queue_speed = \"0msec\"; cmds_max_at_once = \"100\"; }}; \
             core = {{ real_name = \"irssi user\"; resolve_prefer_ipv6 = \"no\"; \
             server_reconnect_time = \"1s\"; }}; }};\n",
            site.irc_tls,
            site.trust.display()
        ),
    )
    .expect("write irssi's config");
    let home_arg = format!("--home={}", irssi_home.display());
    tmux.start("irssi", "/usr/bin/irssi", &[&home_arg, "-n", "irssiuser"]);

    let weechat_home = site.dir.0.join("weechat");
    let setup = format!(
        "/set irc.server_default.anti_flood_prio_high 0;\
         /set irc.server_default.anti_flood_prio_low 0;\
         /set irc.server_default.autoreconnect_delay 1;\
         /server add natter 127.0.0.1/{} -notls -nicks=weeuser -autojoin=#deploy;\
         /connect natter",
        site.irc
    );
    let weechat_home_arg = weechat_home.display().to_string();
    tmux.start(
        "weechat",
        "/usr/bin/weechat",
        &["-d", &weechat_home_arg, "-r", &setup],
    );

    // The TUI over TLS, signed in as the admin (the password from the environment).
    let tui_home = TempDir::new("natter-every-door-tui");
    let natter = workspace_bin("natter").await;
    let tls_url = format!("natters://localhost:{}", site.tls);
    let env_home = format!("XDG_CONFIG_HOME={}", tui_home.0.display());
    let env_pw = format!("NATTER_PASSWORD={ADMIN_PASSWORD}");
    let trust = site.trust.display().to_string();
    tmux.start(
        "tui",
        "/usr/bin/env",
        &[
            &env_home,
            &env_pw,
            "sh",
            "-c",
            "\"$0\" \"$@\"; echo \"natter exited with $?\"; exec sleep 60",
            &natter.display().to_string(),
            "--login",
            "--nick",
            "admin",
            "--ca-file",
            &trust,
            "--room",
            ROOM,
            &tls_url,
        ],
    );

    // natter in line mode (plain port), and a person on nc.
    let cli_home = TempDir::new("natter-every-door-cli");
    let plain = site.addr(site.plain).to_string();
    let cli = line_client(
        &["--lines", "--nick", "liner", "--room", ROOM, &plain],
        &cli_home.0,
    )
    .await;
    let (write, out) = nc(site.addr(site.plain), "ncuser").await;
    let mut ncuser = Nc { write, out };
    ncuser.say("/join #deploy").await;

    let mut room = Room {
        site,
        tmux,
        b,
        cli,
        nc: ncuser,
        cli_home,
    };
    let r = &mut room;

    // Everyone arrives.
    r.tmux.wait_line("irssi", &["End of /MOTD command"]).await;
    r.tmux
        .type_until(
            "irssi",
            "/join #deploy",
            &["irssiuser", "has joined #deploy"],
        )
        .await;
    r.tmux
        .wait_line("weechat", &["weeuser", "has joined #deploy"])
        .await;
    r.tmux.wait_line("tui", &["signed in as admin"]).await;
    for who in ["irssiuser", "weeuser", "admin", "liner"] {
        nc_sees_member("nc", &r.nc.out, who).await;
    }
    wait_for!("everyone in the page's member list", {
        let members = text_of(&r.b, "#member-list").await;
        ["irssiuser", "weeuser", "admin", "liner", "ncuser"]
            .iter()
            .all(|m| members.contains(m))
            .then_some(())
    });

    // A line from each door reaches every other.
    type_line(&r.b, "hello from the page").await;
    r.tmux
        .type_until(
            "irssi",
            "hello from irssi",
            &["< irssiuser> hello from irssi"],
        )
        .await;
    r.tmux
        .type_until(
            "weechat",
            "hello from weechat",
            &["weeuser", "hello from weechat"],
        )
        .await;
    r.tmux
        .type_until("tui", "hello from the tui", &["<admin> hello from the tui"])
        .await;
    r.cli.say("hello from the cli").await;
    r.nc.say("hello from nc").await;
    let said = [
        ("webby", "hello from the page"),
        ("irssiuser", "hello from irssi"),
        ("weeuser", "hello from weechat"),
        ("admin", "hello from the tui"),
        ("liner", "hello from the cli"),
        ("ncuser", "hello from nc"),
    ];
    everyone_sees_lines(r, &said).await;

    // Actions.
    type_line(&r.b, "/me waves from the page").await;
    r.tmux.type_line("irssi", "/me waves from irssi");
    r.tmux.type_line("weechat", "/me waves from weechat");
    r.tmux.type_line("tui", "/me waves from the tui");
    r.cli.say("/me waves from the cli").await;
    r.nc.say("/me waves from nc").await;
    everyone_sees_actions(
        r,
        &[
            ("webby", "waves from the page"),
            ("irssiuser", "waves from irssi"),
            ("weeuser", "waves from weechat"),
            ("admin", "waves from the tui"),
            ("liner", "waves from the cli"),
            ("ncuser", "waves from nc"),
        ],
    )
    .await;

    // A topic from IRC and one from nc.
    r.tmux.type_line("irssi", "/topic #deploy set in irssi");
    r.tmux
        .wait_line("weechat", &["irssiuser", "set in irssi"])
        .await;
    r.tmux.wait_line("tui", &["set in irssi"]).await;
    sees(
        "the CLI",
        &r.cli.out,
        &["irssiuser set the topic of #deploy: set in irssi"],
    )
    .await;
    sees(
        "nc",
        &r.nc.out,
        &["irssiuser set the topic of #deploy: set in irssi"],
    )
    .await;
    wait_for!(
        "the topic in the page's header",
        text_of(&r.b, "#topic")
            .await
            .contains("set in irssi")
            .then_some(())
    );
    r.nc.say("/topic set on nc").await;
    r.tmux
        .wait_line(
            "irssi",
            &["ncuser changed the topic of #deploy to: set on nc"],
        )
        .await;
    r.tmux.wait_line("weechat", &["ncuser", "set on nc"]).await;
    sees(
        "the CLI",
        &r.cli.out,
        &["ncuser set the topic of #deploy: set on nc"],
    )
    .await;

    // Away, from WeeChat: said to natter's clients and nc; irssi reads it in WHOIS.
    r.tmux.type_line("weechat", "/away gone fishing");
    sees("nc", &r.nc.out, &["weeuser is away: gone fishing"]).await;
    sees("the CLI", &r.cli.out, &["weeuser is away: gone fishing"]).await;
    page_sees(&r.b, ROOM, &["weeuser is away: gone fishing"]).await;
    r.tmux
        .wait_line("tui", &["weeuser is away: gone fishing"])
        .await;
    // (irssi prints WHOIS in its status window.)
    r.tmux.type_line("irssi", "/whois weeuser");
    r.tmux.type_line("irssi", "/window 1");
    r.tmux.wait_line("irssi", &["away", "gone fishing"]).await;
    r.tmux.type_line("irssi", "/window goto #deploy");
    r.tmux.type_line("weechat", "/away");
    sees("nc", &r.nc.out, &["weeuser is back"]).await;

    // Direct messages across doors: IRC to the page, the page to nc, the CLI to irssi.
    r.tmux
        .type_line("irssi", "/msg webby psst page, from irssi");
    page_sees(&r.b, "@irssiuser", &["psst page, from irssi"]).await;
    type_line(&r.b, "/msg ncuser psst nc, from the page").await;
    sees("nc", &r.nc.out, &["*webby* psst nc, from the page"]).await;
    r.cli.say("/msg irssiuser psst irssi, from the cli").await;
    r.tmux.type_line("irssi", "/query liner");
    r.tmux
        .wait_line("irssi", &["liner", "psst irssi, from the cli"])
        .await;
    r.tmux.type_line("irssi", "/window goto #deploy");

    // The founder (the page) kicks nc's person, who comes back.
    type_line(&r.b, "/kick ncuser mind your manners").await;
    sees(
        "nc",
        &r.nc.out,
        &["webby put you out of #deploy (mind your manners)"],
    )
    .await;
    r.tmux
        .wait_line(
            "irssi",
            &[
                "ncuser was kicked from #deploy by webby",
                "mind your manners",
            ],
        )
        .await;
    r.tmux
        .wait_line("weechat", &["ncuser", "kicked", "mind your manners"])
        .await;
    r.tmux
        .wait_line(
            "tui",
            &["webby put ncuser out of #deploy (mind your manners)"],
        )
        .await;
    sees(
        "the CLI",
        &r.cli.out,
        &["[#deploy] -- webby put ncuser out of #deploy (mind your manners)"],
    )
    .await;
    page_sees(&r.b, ROOM, &["put ncuser out of #deploy"]).await;
    r.nc.say("/join #deploy").await;
    r.tmux
        .wait_line("irssi", &["ncuser", "has joined #deploy"])
        .await;

    // WeeChat parts, misses a line, and has it when it joins again (history on rejoin).
    r.tmux.type_line("weechat", "/part #deploy off for tea");
    sees("nc", &r.nc.out, &["weeuser left #deploy (off for tea)"]).await;
    r.tmux
        .wait_line("irssi", &["weeuser", "has left #deploy", "off for tea"])
        .await;
    page_sees(&r.b, ROOM, &["weeuser left"]).await;
    r.cli.say("said while weechat was out").await;
    sees("nc", &r.nc.out, &["<liner> said while weechat was out"]).await;
    r.tmux.type_line("weechat", "/join #deploy");
    r.tmux
        .wait_line("weechat", &["liner", "said while weechat was out"])
        .await;
    sees("nc", &r.nc.out, &["weeuser joined #deploy"]).await;

    // A nick change, on IRC: everyone follows it.
    r.tmux.type_line("weechat", "/nick weenew");
    r.tmux
        .wait_line("irssi", &["weeuser is now known as weenew"])
        .await;
    sees("nc", &r.nc.out, &["weeuser is now known as weenew"]).await;
    sees("the CLI", &r.cli.out, &["weeuser is now known as weenew"]).await;
    page_sees(&r.b, ROOM, &["weeuser is now known as weenew"]).await;
    r.tmux
        .wait_line("tui", &["weeuser is now known as weenew"])
        .await;

    // Search, from the CLI and the page.
    r.cli.say("/search hello from").await;
    sees("the CLI", &r.cli.out, &["-- 6 results"]).await;
    sees("the CLI", &r.cli.out, &["<irssiuser> hello from irssi"]).await;
    search_on_page(&r.b, "hello from", 6).await;

    // The server stops on SIGTERM (exit 0) and starts again on its store.
    let pid = nix::unistd::Pid::from_raw(server.id().expect("a pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = timeout(STEP, server.wait())
        .await
        .expect("natter-server stops within a step of SIGTERM")
        .expect("wait for natter-server");
    assert!(status.success(), "natter-server exited {status} on SIGTERM");
    sees("nc", &r.nc.out, &["-- server shutting down"]).await;
    // nc's and IRC's people cannot resume: they are said to quit before the server goes.
    sees(
        "the CLI",
        &r.cli.out,
        &["[#deploy] -- ncuser quit (server shutting down)"],
    )
    .await;
    sees(
        "the CLI",
        &r.cli.out,
        &["-- irssiuser quit (server shutting down)"],
    )
    .await;
    page_sees(&r.b, ROOM, &["weenew quit (server shutting down)"]).await;
    let (mut server, log) = start_server(&r.site).await;

    // natter's clients resume; IRC clients connect again and rejoin; nc connects again.
    wait_for!(
        "the page back",
        (conn_state(&r.b).await == "connected").then_some(())
    );
    // natter's clients say they picked up where they left off (a resume, not a new session).
    r.tmux
        .wait_line(
            "tui",
            &["reconnected as admin; picked up where you left off"],
        )
        .await;
    sees(
        "the CLI",
        &r.cli.out,
        &["-- reconnected as liner; picked up where you left off"],
    )
    .await;
    page_sees(
        &r.b,
        ROOM,
        &["reconnected as webby; picked up where you left off"],
    )
    .await;
    r.tmux
        .wait_line("irssi", &["irssiuser", "has joined #deploy"])
        .await;
    let (write, out) = nc(r.site.addr(r.site.plain), "ncback").await;
    r.nc = Nc { write, out };
    r.nc.say("/join #deploy").await;
    // The store kept the room's lines: nc's join shows them (its replay is the room's lines,
    // not who came and went).
    sees(
        "nc, back",
        &r.nc.out,
        &["<liner> said while weechat was out"],
    )
    .await;
    for who in ["irssiuser", "weenew"] {
        nc_sees_member("nc, back", &r.nc.out, who).await;
    }
    type_line(&r.b, "back from the page").await;
    r.tmux
        .type_until("tui", "back from the tui", &["<admin> back from the tui"])
        .await;
    r.cli.say("back from the cli").await;
    r.tmux.type_line("irssi", "back from irssi");
    r.tmux.type_line("weechat", "back from weechat");
    r.nc.say("back from nc").await;
    everyone_sees_lines(
        r,
        &[
            ("webby", "back from the page"),
            ("admin", "back from the tui"),
            ("liner", "back from the cli"),
            ("irssiuser", "back from irssi"),
            ("weenew", "back from weechat"),
            ("ncback", "back from nc"),
        ],
    )
    .await;
    // The page resumed its session: still webby, signed in, no second join of its own.
    assert!(
        text_of(&r.b, "#member-list").await.contains("webby"),
        "the page is webby again"
    );

    // SIGHUP with everyone connected: a certificate from the second CA is served from now on
    // (a client trusting that CA alone gets in), and everyone goes on talking.
    ca2.leaf(&["localhost", "127.0.0.1"])
        .expect("a certificate")
        .write(&r.site.dir.0)
        .expect("write it over the first");
    let pid = nix::unistd::Pid::from_raw(server.id().expect("a pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    sees("natter-server's log", &log, &["TLS certificate reloaded"]).await;
    let ca2_only = r.site.ca2.display().to_string();
    let tls_url = format!("natters://localhost:{}", r.site.tls);
    let mut newcomer = line_client(
        &[
            "--lines",
            "--nick",
            "newcomer",
            "--room",
            ROOM,
            "--ca-file",
            &ca2_only,
            &tls_url,
        ],
        &r.cli_home.0,
    )
    .await;
    newcomer.say("hello after the reload").await;
    drop(newcomer.stdin);
    let status = timeout(STEP, newcomer.child.wait())
        .await
        .expect("the newcomer is done within a step")
        .expect("wait for natter");
    assert!(
        status.success(),
        "natter trusting the new CA alone: {status}; it said {:#?}",
        newcomer.out.lines()
    );
    r.tmux
        .type_until(
            "irssi",
            "still here after the reload",
            &["< irssiuser> still here after the reload"],
        )
        .await;
    everyone_sees_lines(
        r,
        &[
            ("newcomer", "hello after the reload"),
            ("irssiuser", "still here after the reload"),
        ],
    )
    .await;

    // Metrics, as README's Operations section shows them.
    let metrics = http_get(r.site.addr(r.site.metrics), "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("natter_users "), "{metrics}");
    assert!(
        http_get(r.site.addr(r.site.metrics), "/readyz")
            .await
            .starts_with("HTTP/1.1 200")
    );

    // SIGTERM again, to end: the server stops by itself, exit 0.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = timeout(STEP, server.wait())
        .await
        .expect("natter-server stops within a step of SIGTERM")
        .expect("wait for natter-server");
    assert!(status.success(), "natter-server exited {status} on SIGTERM");
}

/// Every door but the speaker's shows each `(nick, text)` said in the room.
async fn everyone_sees_lines(r: &Room, said: &[(&str, &str)]) {
    for (nick, text) in said {
        if *nick != "irssiuser" {
            r.tmux
                .wait_line("irssi", &[&format!("{nick}> {text}")])
                .await;
        }
        if !nick.starts_with("wee") {
            r.tmux.wait_line("weechat", &[nick, text]).await;
        }
        if *nick != "admin" {
            r.tmux.wait_line("tui", &[&format!("{nick}> {text}")]).await;
        }
        if *nick != "liner" {
            sees(
                "the CLI",
                &r.cli.out,
                &[&format!("[#deploy] <{nick}> {text}")],
            )
            .await;
        }
        if !nick.starts_with("nc") {
            sees("nc", &r.nc.out, &[&format!("<{nick}> {text}")]).await;
        }
        if *nick != "webby" {
            wait_for!(
                format!("the page to show <{nick}> {text}"),
                SEE,
                chat(&r.b, ROOM)
                    .await
                    .iter()
                    .any(|(n, t)| n == nick && t == text)
                    .then_some(())
            );
        }
    }
}

/// Every door but the actor's shows each `(nick, action)` done in the room.
async fn everyone_sees_actions(r: &Room, done: &[(&str, &str)]) {
    for (nick, text) in done {
        let star = format!("* {nick} {text}");
        if *nick != "irssiuser" {
            r.tmux.wait_line("irssi", &[&star]).await;
        }
        if !nick.starts_with("wee") {
            r.tmux
                .wait_line("weechat", &[&format!("{nick} {text}")])
                .await;
        }
        if *nick != "admin" {
            r.tmux.wait_line("tui", &[&star]).await;
        }
        if *nick != "liner" {
            sees("the CLI", &r.cli.out, &[&format!("[#deploy] {star}")]).await;
        }
        if !nick.starts_with("nc") {
            sees("nc", &r.nc.out, &[&star]).await;
        }
        if *nick != "webby" {
            wait_for!(
                format!("the page to show {star}"),
                SEE,
                chat(&r.b, ROOM)
                    .await
                    .iter()
                    .any(|(n, t)| n == nick && t == text)
                    .then_some(())
            );
        }
    }
}

/// Searches from the page's header box for `words` and waits for `n` hits.
async fn search_on_page(b: &Browser, words: &str, n: u64) {
    let script = format!(
        "document.getElementById('search-input').value = {}; \
         document.getElementById('search-form').requestSubmit();",
        serde_json::Value::from(words)
    );
    js(b, &script).await;
    wait_for!(
        format!("{n} hit(s) on the page for {words:?}"),
        SEE,
        (js(
            b,
            "return document.getElementById('search-panel').dataset.state === 'done' \
                && document.querySelectorAll('#search-hits .hit').length;"
        )
        .await
        .as_u64()
            == Some(n))
        .then_some(())
    );
    js(b, "document.getElementById('search-close').click();").await;
}
