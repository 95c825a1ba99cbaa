//! The TUI under tmux: clients in panes of a private tmux server per test (fixed size), typed
//! into with send-keys and read with capture-pane. The tmux server is killed when the test ends,
//! also when it fails.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{Client, WAIT, config_home, long_history, server, server_on, server_with};

/// A private tmux server.
struct Tmux {
    socket: String,
    conf: PathBuf,
}

impl Tmux {
    /// A tmux server of its own for the test called `test` (tests run side by side).
    fn new(test: &str) -> Tmux {
        let socket = format!("natter-test-{}-{test}", std::process::id());
        let conf = std::env::temp_dir().join(format!("{socket}.conf"));
        // No status bar: the pane is the whole window.
        std::fs::write(&conf, "set -g status off\n").expect("write tmux config");
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
            .expect("tmux runs (is tmux installed? `cargo xtask test` installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `natter --nick NICK ADDR` in a new 100x24 session named NICK. A shell around it
    /// prints its exit status into the pane afterwards (reaped by the shell: more dependable
    /// than tmux's own pane status).
    fn start(&self, nick: &str, addr: &str) {
        self.start_with(nick, addr, &[]);
    }

    /// As [`Tmux::start`], with more arguments for natter before the address.
    fn start_with(&self, nick: &str, addr: &str, extra: &[&str]) {
        let config_home = format!("XDG_CONFIG_HOME={}", config_home().display());
        let mut args = vec![
            "new-session",
            "-d",
            "-s",
            nick,
            "-x",
            "100",
            "-y",
            "24",
            "env",
            // Whatever runs the tests: --login asks on the terminal here.
            "-u",
            "NATTER_PASSWORD",
            &config_home,
            "sh",
            "-c",
            "\"$0\" \"$@\"; echo \"natter exited with $?\"; exec sleep 60",
            env!("CARGO_BIN_EXE_natter"),
            "--nick",
            nick,
        ];
        args.extend_from_slice(extra);
        args.push(addr);
        self.run(&args);
    }

    /// Starts `natter --nick NICK ADDR` ([`Tmux::start`]) and waits until its screen shows
    /// `text`: that screen.
    async fn start_until(&self, nick: &str, addr: &str, text: &str) -> String {
        self.start(nick, addr);
        self.wait_for(nick, text).await
    }

    /// Types `line` into `target` and waits until its screen shows `text`: that screen.
    async fn type_until(&self, target: &str, line: &str, text: &str) -> String {
        self.type_line(target, line);
        self.wait_for(target, text).await
    }

    /// Copies everything `target`'s program writes from now on to a file (the raw bytes,
    /// escapes and bells included). Returns its path; the caller removes it.
    fn record(&self, target: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("{}-{target}.out", self.socket));
        let _ = std::fs::remove_file(&path);
        self.run(&[
            "pipe-pane",
            "-o",
            "-t",
            target,
            &format!("cat >> {}", path.display()),
        ]);
        path
    }

    /// The screen with its colours and attributes (SGR escapes).
    fn styled_screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", target])
    }

    fn type_line(&self, target: &str, text: &str) {
        self.run(&["send-keys", "-t", target, "-l", text]);
        self.run(&["send-keys", "-t", target, "Enter"]);
    }

    fn keys(&self, target: &str, keys: &str) {
        self.run(&["send-keys", "-t", target, keys]);
    }

    fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
    }

    /// A notch of the mouse wheel over column 40, row 10, as a terminal reports it to a
    /// program that asked for mouse reports (SGR encoding): up, or down.
    fn wheel(&self, target: &str, up: bool) {
        let report = format!("\x1b[<{};40;10M", if up { 64 } else { 65 });
        let hex: Vec<String> = report.bytes().map(|b| format!("{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", target, "-H"];
        args.extend(hex.iter().map(String::as_str));
        self.run(&args);
    }

    /// The mouse reporting `target`'s program asked for: (presses and the wheel, in SGR
    /// encoding, with motion while a button is held, with every motion).
    fn mouse_modes(&self, target: &str) -> (bool, bool, bool, bool) {
        let flags = self.run(&[
            "display-message",
            "-p",
            "-t",
            target,
            "#{mouse_standard_flag} #{mouse_sgr_flag} #{mouse_button_flag} #{mouse_all_flag}",
        ]);
        let on: Vec<bool> = flags.split_whitespace().map(|f| f == "1").collect();
        assert_eq!(on.len(), 4, "{flags}");
        (on[0], on[1], on[2], on[3])
    }

    /// Polls `target`'s screen until `pred` holds.
    async fn wait(&self, target: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen(target);
            if pred(&screen) {
                return screen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{target}: no {what} within {WAIT:?}; screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for(&self, target: &str, text: &str) -> String {
        self.wait(target, text, |s| s.contains(text)).await
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
        // kill-server leaves its socket file behind; ask where it is first.
        let socket_path = tmux(&["display-message", "-p", "#{socket_path}"])
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let _ = tmux(&["kill-server"]);
        if let Some(path) = socket_path.filter(|p| !p.is_empty()) {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&self.conf);
    }
}

/// The member pane's entries (the text right of the last rule on each body row).
fn members(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip(1)
        .filter_map(|l| {
            let parts: Vec<&str> = l.split('│').collect();
            (parts.len() >= 3).then(|| parts[parts.len() - 1].trim().to_owned())
        })
        .filter(|m| !m.is_empty())
        .collect()
}

fn topic_line(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tui_clients_chat_switch_rooms_and_see_members() {
    let (server, addr) = server().await;
    let addr = addr.to_string();
    let tmux = Tmux::new("chat");

    tmux.start_until("alice", &addr, "[Connected] alice").await;
    tmux.wait_for("alice", "-- you are in #lobby").await;
    let screen = tmux.screen("alice");
    assert_eq!(members(&screen), ["1 here", "alice"]);
    // Our own join is said once, by that notice (it was said again as `alice joined #lobby`).
    assert!(!screen.contains("alice joined"), "{screen}");

    // Someone joins: the member list updates.
    tmux.start_until("bob", &addr, "[Connected] bob").await;
    let screen = tmux
        .wait("alice", "bob in the member list", |s| {
            members(s) == ["2 here", "alice", "bob"]
        })
        .await;
    assert!(screen.contains("-- bob joined #lobby"), "{screen}");

    // Typed in one client, seen in the other.
    tmux.type_line("bob", "hello from bob");
    tmux.wait_for("alice", "<bob> hello from bob").await;

    // A notice typed in one client reads as a notice in both (`-bob-`), not as a line.
    tmux.type_line("bob", "/notice #lobby build is green");
    tmux.wait_for("alice", "-bob- build is green").await;
    tmux.wait_for("bob", "-bob- build is green").await;
    assert!(!tmux.screen("alice").contains("<bob> build is green"));

    // /help lists the commands, and on the full screen the keys too.
    tmux.type_until("bob", "/help", "/quit [reason]").await;
    tmux.wait_for("bob", "keys: Enter sends").await;

    // /join switches to the new room; chat elsewhere counts as unread.
    tmux.type_line("alice", "/join #rust");
    tmux.wait("alice", "#rust current", |s| {
        topic_line(s).trim() == "#rust"
    })
    .await;
    tmux.wait_for("alice", "2 #rust").await;
    tmux.type_line("bob", "psst in the lobby");
    tmux.wait_for("alice", "1 #lobby (1)").await;
    assert!(!tmux.screen("alice").contains("psst in the lobby"));

    // Alt+1 goes back to the lobby: its message shows and the unread count is gone.
    tmux.keys("alice", "M-1");
    let screen = tmux
        .wait("alice", "#lobby current", |s| {
            topic_line(s).trim() == "#lobby"
        })
        .await;
    let screen = if screen.contains("<bob> psst in the lobby") {
        screen
    } else {
        tmux.wait_for("alice", "<bob> psst in the lobby").await
    };
    assert!(!screen.contains("(1)"), "{screen}");

    // Ctrl+N to the next room; a join there shows in that room's member list.
    tmux.keys("alice", "C-n");
    tmux.wait("alice", "#rust current", |s| {
        topic_line(s).trim() == "#rust"
    })
    .await;
    assert_eq!(members(&tmux.screen("alice")), ["1 here", "alice"]);
    tmux.type_line("bob", "/join #rust");
    tmux.wait("alice", "bob in #rust's member list", |s| {
        members(s) == ["2 here", "alice", "bob"]
    })
    .await;

    // A multi-line paste waits in the input line (its breaks shown) and Enter sends each
    // line as a message of its own, as irssi and WeeChat do (it was joined into one).
    // A later line starting with `/` is said, not run.
    tmux.run(&[
        "set-buffer",
        "-b",
        "p",
        "line one\nline two\n/quit not run\n",
    ]);
    tmux.run(&["paste-buffer", "-p", "-b", "p", "-t", "bob"]);
    tmux.wait_for("bob", "> line one↵line two↵/quit not run")
        .await;
    tmux.keys("bob", "Enter");
    tmux.wait_for("alice", "<bob> /quit not run").await;
    tmux.wait_for("alice", "<bob> line two").await;
    let screen = tmux.wait_for("alice", "<bob> line one").await;
    assert!(!screen.contains("line one line two"), "{screen}");
    // A longer one is asked about first: the first Enter says how many messages it makes.
    let seven: Vec<String> = (1..=7).map(|n| format!("pasted {n}")).collect();
    tmux.run(&["set-buffer", "-b", "p", &seven.join("\n")]);
    tmux.run(&["paste-buffer", "-p", "-b", "p", "-t", "bob"]);
    tmux.wait_for("bob", "> pasted 1↵pasted 2").await;
    tmux.keys("bob", "Enter");
    tmux.wait_for("bob", "this paste is 7 lines: Enter again sends them")
        .await;
    assert!(!tmux.screen("alice").contains("pasted 1"));
    tmux.keys("bob", "Enter");
    for line in &seven {
        tmux.wait_for("alice", &format!("<bob> {line}")).await;
    }

    // Ctrl+C leaves cleanly (exit status 0, terminal restored: the UI is gone from the pane).
    tmux.keys("alice", "C-c");
    let screen = tmux.wait_for("alice", "natter exited with").await;
    assert!(screen.contains("natter exited with 0"), "{screen}");
    assert!(!screen.contains("[Connected]"), "{screen}");
    tmux.wait_for("bob", "-- alice quit").await;
    // So does /quit.
    tmux.type_until("bob", "/quit", "natter exited with 0")
        .await;

    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_while_the_server_is_down_shows_as_pending_until_delivered() {
    const LINE: &str = "typed while the server was down";
    let (first, addr) = server().await;
    let tmux = Tmux::new("pending");
    tmux.start_until("carol", &addr.to_string(), "[Connected] carol")
        .await;
    tmux.wait_for("carol", "-- you are in #lobby").await;

    first.shutdown().await.expect("first server shuts down");
    tmux.wait_for("carol", "connection lost: ").await;
    let screen = tmux
        .type_until("carol", LINE, &format!("<carol> {LINE} (sending)"))
        .await;
    assert!(!screen.contains("[Connected]"), "{screen}");

    // The server is back: the line goes out and its echo replaces the pending copy.
    let second = server_on(addr).await;
    let screen = tmux
        .wait("carol", "the line delivered", |s| {
            s.contains("[Connected] carol")
                && s.contains(&format!("<carol> {LINE}"))
                && !s.contains("(sending)")
        })
        .await;
    assert_eq!(screen.matches(LINE).count(), 1, "{screen}");

    // Someone else sees it once: from the history on joining, then nothing more of it.
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    tmux.type_line("carol", "and after");
    bob.expect("[#lobby] <carol> and after").await;
    assert_eq!(
        bob.count(&format!("[#lobby] <carol> {LINE}")),
        1,
        "{:#?}",
        bob.seen
    );
    let screen = tmux.wait_for("carol", "<carol> and after").await;
    assert_eq!(screen.matches(LINE).count(), 1, "{screen}");
    assert!(!screen.contains("(sending)"), "{screen}");
    assert!(!screen.contains("not delivered"), "{screen}");

    tmux.keys("carol", "C-c");
    let screen = tmux.wait_for("carol", "natter exited with").await;
    assert!(screen.contains("natter exited with 0"), "{screen}");
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    drop(tmux);
    second.shutdown().await.expect("second server shuts down");
}

/// Bells (BEL bytes) in what was recorded so far.
fn bells(recording: &std::path::Path) -> usize {
    std::fs::read(recording)
        .map(|b| b.iter().filter(|&&c| c == 0x07).count())
        .unwrap_or(0)
}

/// Waits until `recording` holds at least `n` bells.
async fn wait_bells(recording: &std::path::Path, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while bells(recording) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} bells, not {n}, within {WAIT:?}",
            bells(recording)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SGR parameters in effect where `word` starts on the first styled row containing `row`.
fn style_before(styled: &str, row: &str, word: &str) -> String {
    let line = styled
        .lines()
        .find(|l| strip_sgr(l).contains(row))
        .unwrap_or_else(|| panic!("no row with {row:?} in\n{styled}"));
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"));
    // The escapes right before the word, back to the previous printable text.
    let before = &line[..at];
    let start = before
        .rfind(|c: char| c != 'm' && !c.is_ascii_digit() && c != ';' && c != '[' && c != '\x1b')
        .map_or(0, |i| i + 1);
    before[start..].to_owned()
}

fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_highlighted_and_rings_the_bell_unless_told_not_to() {
    let (server, addr) = server().await;
    let tmux = Tmux::new("mention");
    tmux.start("carol", &addr.to_string());
    tmux.start_with("dave", &addr.to_string(), &["--no-bell"]);
    tmux.wait_for("carol", "[Connected] carol").await;
    tmux.wait_for("dave", "[Connected] dave").await;
    let carol_out = tmux.record("carol");
    let dave_out = tmux.record("dave");

    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    bob.send("nothing for anyone here").await;
    tmux.wait_for("carol", "<bob> nothing for anyone here")
        .await;
    assert_eq!(bells(&carol_out), 0, "plain chat rings no bell");

    // A mention: highlighted in the line, and a bell.
    bob.send("hey Carol, look here").await;
    tmux.wait_for("carol", "<bob> hey Carol, look here").await;
    let styled = tmux.styled_screen("carol");
    let style = style_before(&styled, "<bob> hey Carol, look here", "Carol");
    // On yellow, as draw::MENTION says (tmux writes colour 3 as `43` or `48;5;3`).
    let on_yellow = |sgr: &str| sgr.contains("48;5;3m") || sgr.contains("43m");
    assert!(on_yellow(&style), "mention style {style:?} in\n{styled}");
    let plain_style = style_before(&styled, "<bob> hey Carol, look here", "hey");
    assert!(!on_yellow(&plain_style), "{plain_style:?}");
    wait_bells(&carol_out, 1).await;

    // A direct message: its own conversation, counted as for us, and a bell.
    bob.send("/msg carol psst").await;
    tmux.wait_for("carol", "@bob (1, @1)").await;
    wait_bells(&carol_out, 2).await;

    // dave asked for no bell: mentioned, highlighted, silent.
    bob.send("dave: you too").await;
    tmux.wait_for("dave", "<bob> dave: you too").await;
    bob.send("/msg dave psst").await;
    tmux.wait_for("dave", "@bob (1, @1)").await;
    // Let carol's side show the later line too, so a bell dave would ring has had its time.
    tmux.wait_for("carol", "<bob> dave: you too").await;
    assert_eq!(bells(&dave_out), 0, "--no-bell rings nothing");

    for who in ["carol", "dave"] {
        tmux.keys(who, "C-c");
        let screen = tmux.wait_for(who, "natter exited with").await;
        assert!(screen.contains("natter exited with 0"), "{screen}");
    }
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    let _ = std::fs::remove_file(carol_out);
    let _ = std::fs::remove_file(dave_out);
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgup_at_the_top_loads_older_lines_down_to_the_beginning_and_search_shows_hits() {
    // More lines than a join replays (50): the rest is older history the server still holds.
    let (server, addr) = server_with(long_history).await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    for i in 1..=80 {
        bob.send(&format!("old line {i:03}")).await;
    }
    bob.expect("[#lobby] <bob> old line 080").await;

    let tmux = Tmux::new("scrollback");
    tmux.start_until("alice", &addr.to_string(), "<bob> old line 080")
        .await;
    // PgUp until the oldest line and the beginning of the room are on screen; the first
    // PgUp that reaches the top loads the older lines.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut presses = 0;
    let screen = loop {
        let screen = tmux.screen("alice");
        if screen.contains("<bob> old line 001") && screen.contains("-- the beginning of #lobby --")
        {
            break screen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no beginning after {presses} PgUps; screen:\n{screen}"
        );
        tmux.keys("alice", "PPage");
        presses += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        presses >= 4,
        "{presses} PgUps for 80 lines on a 24-row screen"
    );
    assert!(screen.contains("-- bob joined #lobby"), "{screen}");
    // Every line is there once, in order, as PgDn walks back down; the notice of our joining
    // stays where this visit began, below the older lines PgUp loaded (it used to go above
    // them, as if we had joined before they were said).
    let joined = "-- you are in #lobby with: bob".to_owned();
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..30 {
        let screen = tmux.screen("alice");
        for l in screen.lines() {
            if l.contains(&joined) && !seen.contains(&joined) {
                seen.push(joined.clone());
            }
            if let Some(at) = l.find("<bob> old line ") {
                let line = l[at..]
                    .split('│')
                    .next()
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned();
                if !seen.contains(&line) {
                    seen.push(line);
                }
            }
        }
        if screen.contains("<bob> old line 080") && !screen.contains("scrolled up") {
            break;
        }
        tmux.keys("alice", "NPage");
        // One page at a time: the next PgDn only once this one is drawn (a loaded machine
        // may take longer than a fixed pause, and two pages drawn between two looks would
        // skip the lines of the first).
        let drawn = tokio::time::Instant::now() + WAIT;
        while tmux.screen("alice") == screen && tokio::time::Instant::now() < drawn {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let note = seen.iter().position(|l| *l == joined);
    let lines: Vec<String> = seen.iter().filter(|l| **l != joined).cloned().collect();
    let want: Vec<String> = (1..=80).map(|i| format!("<bob> old line {i:03}")).collect();
    assert_eq!(lines, want);
    // The join replayed the newest 50 events, above the notice of the join (they are older);
    // the 30 or so lines PgUp loaded are above them: the notice is below all 80.
    assert_eq!(note, Some(80), "{seen:#?}");

    // /search shows its hits in place of the conversation; Esc goes back.
    tmux.type_line("alice", "/search line 042");
    let screen = tmux
        .wait_for(
            "alice",
            "1 result for \"line 042\" in all your rooms (Esc closes)",
        )
        .await;
    assert!(screen.contains("#lobby <bob> old line 042"), "{screen}");
    assert!(!screen.contains("old line 041"), "{screen}");
    tmux.keys("alice", "Escape");
    tmux.wait("alice", "the conversation back", |s| {
        s.contains("<bob> old line 080") && !s.contains("(Esc closes)")
    })
    .await;

    tmux.keys("alice", "C-c");
    let screen = tmux.wait_for("alice", "natter exited with").await;
    assert!(screen.contains("natter exited with 0"), "{screen}");
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// The mouse wheel browsed the input history: with mouse reporting off, a terminal sends the
/// wheel as Up/Down in the alternate screen. The TUI asks for the wheel's reports (presses
/// only, no motion, so a terminal still selects text with Shift held) and scrolls the
/// conversation with it, as irssi and WeeChat do; the terminal is given back without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mouse_wheel_scrolls_the_conversation_and_leaves_the_input_alone() {
    let (server, addr) = server().await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    for i in 1..=40 {
        bob.send(&format!("line {i:03}")).await;
    }
    bob.expect("[#lobby] <bob> line 040").await;

    let tmux = Tmux::new("wheel");
    tmux.start_until("alice", &addr.to_string(), "<bob> line 040")
        .await;
    assert_eq!(
        tmux.mouse_modes("alice"),
        (true, true, false, false),
        "the wheel's reports, no motion"
    );
    tmux.type_until("alice", "my own words", "<alice> my own words")
        .await;
    // Two notches up: older lines, the newest out of sight, the input line as it was.
    tmux.wheel("alice", true);
    tmux.wheel("alice", true);
    let screen = tmux
        .wait("alice", "the conversation scrolled up", |s| {
            !s.contains("my own words") && !s.contains("line 040")
        })
        .await;
    assert!(screen.contains("<bob> line 030"), "{screen}");
    let input = |s: &str| s.lines().last().unwrap_or_default().to_owned();
    assert!(!input(&screen).contains("my own words"), "{screen}");
    // And down again to the newest.
    tmux.wheel("alice", false);
    tmux.wheel("alice", false);
    let screen = tmux.wait_for("alice", "<alice> my own words").await;
    assert!(!input(&screen).contains("my own words"), "{screen}");

    tmux.keys("alice", "C-c");
    let screen = tmux.wait_for("alice", "natter exited with").await;
    assert!(screen.contains("natter exited with 0"), "{screen}");
    assert_eq!(
        tmux.mouse_modes("alice"),
        (false, false, false, false),
        "the terminal given back without mouse reports"
    );
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// A resize while scrolled up lost the person's place: the scroll, counted in rows, showed
/// other lines at the new width (narrower, newer ones; wider, older). The line at the bottom
/// of the view stays there, narrower and wider again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_while_scrolled_up_keeps_the_place() {
    let (server, addr) = server().await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    let words = "some words that make this line wrap on a narrow screen and more";
    for i in 1..=40 {
        bob.send(&format!("line {i:03} {words}")).await;
    }
    bob.expect(&format!("[#lobby] <bob> line 040 {words}"))
        .await;

    let tmux = Tmux::new("resize");
    tmux.start_until("alice", &addr.to_string(), "<bob> line 040")
        .await;
    // The newest line whose first row shows.
    let bottom = |screen: &str| {
        screen
            .lines()
            .filter_map(|l| l.split("<bob> line ").nth(1))
            .filter_map(|rest| rest.get(..3)?.parse::<u32>().ok())
            .next_back()
    };
    tmux.keys("alice", "PPage");
    let screen = tmux
        .wait("alice", "scrolled up", |s| s.contains("scrolled up"))
        .await;
    let was = bottom(&screen).unwrap_or_else(|| panic!("{screen}"));
    assert!(was < 40, "{screen}");
    // 45 columns: no side panes, each line three rows (two at 100).
    for width in ["45", "100"] {
        tmux.run(&["resize-window", "-t", "alice", "-x", width, "-y", "24"]);
        // Drawn again at once on the resize; the half-second tick draws again meanwhile.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let screen = tmux.screen("alice");
        assert_eq!(bottom(&screen), Some(was), "width {width}: {screen}");
    }

    tmux.keys("alice", "C-c");
    tmux.wait_for("alice", "natter exited with").await;
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// `/part #lobby #a #b` typed in #lobby, read after #a, #a after #b, #b after #c: each room
/// the TUI opened in place of the one left (the one read before it) went too, with the "you
/// left" said in it, and the person, now in #c, read only "you left #b". Every one is said
/// where they land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parting_several_rooms_says_each_where_we_land() {
    let (server, addr) = server().await;
    let tmux = Tmux::new("parts");
    tmux.start_until("alice", &addr.to_string(), "-- you are in #lobby")
        .await;
    for room in ["#a", "#b", "#c"] {
        tmux.type_line("alice", &format!("/join {room}"));
        tmux.wait("alice", room, |s| {
            topic_line(s).starts_with(&format!(" {room}"))
        })
        .await;
    }
    for (key, room) in [("M-3", "#b"), ("M-2", "#a"), ("M-1", "#lobby")] {
        tmux.keys("alice", key);
        tmux.wait("alice", room, |s| {
            topic_line(s).starts_with(&format!(" {room}"))
        })
        .await;
    }
    tmux.type_line("alice", "/part #lobby #a #b");
    let screen = tmux
        .wait("alice", "every part said in #c", |s| {
            topic_line(s).starts_with(" #c") && s.contains("-- you left #b")
        })
        .await;
    let said: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.split("-- you left ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(said, ["#lobby", "#a", "#b"], "{screen}");
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// Something else writing to the terminal (a background job, `wall`) left its text over the
/// TUI, and nothing but a resize drew the screen again: Ctrl+L does now, as in irssi, WeeChat
/// and a shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_l_draws_the_screen_again_over_what_else_wrote_there() {
    let (server, addr) = server().await;
    let tmux = Tmux::new("redraw");
    let clean = tmux
        .start_until("alice", &addr.to_string(), "-- you are in #lobby")
        .await;
    let tty = tmux.run(&["display-message", "-p", "-t", "alice", "#{pane_tty}"]);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(tty.trim())
        .expect("the pane's terminal");
    std::io::Write::write_all(&mut out, b"\x1b[5;30HSTRAY OUTPUT FROM ELSEWHERE")
        .expect("write to the pane");
    tmux.wait_for("alice", "STRAY OUTPUT").await;
    tmux.keys("alice", "C-l");
    let screen = tmux
        .wait("alice", "the screen drawn again", |s| !s.contains("STRAY"))
        .await;
    assert!(screen.contains("-- you are in #lobby"), "{screen}");
    assert_eq!(topic_line(&screen), topic_line(&clean), "{screen}");
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// irssi and WeeChat users press Tab again for the next nick that matches. The second Tab
/// used to do nothing, so of `bob` and `bobby` only `bob` could be completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tabs_cycle_through_the_nicks_that_match() {
    let (server, addr) = server().await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    let mut bobby = Client::start("bobby", addr, &[]);
    bobby.expect_containing("-- you are in #lobby ").await;

    let tmux = Tmux::new("tabs");
    tmux.start_until("alice", &addr.to_string(), "you are in #lobby with: ")
        .await;
    tmux.run(&["send-keys", "-t", "alice", "-l", "bo"]);
    let prompt = |s: &str| s.lines().last().unwrap_or_default().trim_end().to_owned();
    // The typed word is on the screen before the first Tab: on a busy machine the screen
    // could still show `> b` there, and the first Tab's change was then only `bo` appearing.
    tmux.wait("alice", "the typed word", |s| prompt(s) == "> bo")
        .await;
    let mut shown = Vec::new();
    for _ in 0..3 {
        let before = prompt(&tmux.screen("alice"));
        tmux.keys("alice", "Tab");
        let screen = tmux
            .wait("alice", "the next completion", |s| prompt(s) != before)
            .await;
        shown.push(prompt(&screen));
    }
    assert_eq!(shown, ["> bob:", "> bobby:", "> bob:"], "{shown:?}");
    // Said to the nick shown last.
    tmux.run(&["send-keys", "-t", "alice", "-l", "hi"]);
    tmux.keys("alice", "Enter");
    bobby.expect("[#lobby] <alice> bob: hi").await;

    tmux.keys("alice", "C-c");
    tmux.wait_for("alice", "natter exited with").await;
    for c in [&mut bob, &mut bobby] {
        c.close_stdin();
        assert!(c.exit_status().await.success());
    }
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_asks_for_the_password_without_echo_and_the_status_line_says_who_we_are() {
    let (server, addr) = server().await;
    let mut reg = Client::start("tuia", addr, &[]);
    reg.expect("-- connected as tuia").await;
    reg.send("/register hidden passphrase").await;
    reg.expect("-- you are signed in as tuia").await;
    reg.close_stdin();
    assert!(reg.exit_status().await.success());

    let addr = addr.to_string();
    let tmux = Tmux::new("login");
    tmux.start_with("tuia", &addr, &["--login"]);
    tmux.wait_for("tuia", "password for tuia:").await;
    // At once: echo went off before the prompt was written.
    tmux.run(&["send-keys", "-t", "tuia", "-l", "hidden passphrase"]);
    // Typed, not yet sent: nothing of it on the screen.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!tmux.screen("tuia").contains("hidden"), "echoed");
    tmux.keys("tuia", "Enter");
    let screen = tmux
        .wait_for("tuia", "[Connected] tuia · signed in as tuia")
        .await;
    assert!(!screen.contains("hidden"), "{screen}");
    tmux.type_until("tuia", "/quit", "natter exited with 0")
        .await;
    server.shutdown().await.expect("server shuts down");
}

/// `natter --login`: the account's rooms come back by name, and the first (`#aaa`) was opened
/// whatever the person talks in. The room with the most recent chat the sign-in brought is
/// opened instead; the person's own pick (Alt+1) is theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_the_most_recently_active_room_not_the_first_by_name() {
    let (server, addr) = server().await;
    let mut reg = Client::start("tuic", addr, &[]);
    reg.expect("-- connected as tuic").await;
    reg.send("/register hidden passphrase").await;
    reg.expect("-- you are signed in as tuic").await;
    for room in ["#zzz", "#aaa", "#work"] {
        reg.send(&format!("/join {room}")).await;
        reg.expect_containing(&format!("-- you are in {room} "))
            .await;
    }
    for room in ["#zzz", "#aaa"] {
        reg.send(&format!("/join {room}")).await;
        reg.send(&format!("said in {room}")).await;
        reg.expect(&format!("[{room}] <tuic> said in {room}")).await;
    }
    reg.close_stdin();
    assert!(reg.exit_status().await.success());
    // The newest line, in #work, said once the others are (another run: a later time).
    let mut bob = Client::start("bob", addr, &["--room", "#work"]);
    bob.send("work news").await;
    bob.expect("[#work] <bob> work news").await;

    let sock = addr;
    let addr = addr.to_string();
    let tmux = Tmux::new("lastroom");
    tmux.start_with("tuic", &addr, &["--login"]);
    tmux.wait_for("tuic", "password for tuic:").await;
    tmux.type_line("tuic", "hidden passphrase");
    let screen = tmux
        .wait("tuic", "#work open", |s| topic_line(s).trim() == "#work")
        .await;
    let screen = if screen.contains("<bob> work news") {
        screen
    } else {
        tmux.wait_for("tuic", "<bob> work news").await
    };
    assert!(!screen.contains("said in #aaa"), "{screen}");
    // Another device of the account joins a room later, whose replay is newer than #work's:
    // the sign-in's choice was made, and the person stays where they are (the choice stayed
    // armed until a key was pressed, and took them to #later).
    let mut carl = Client::start("carl", sock, &["--room", "#later"]);
    carl.send("later news").await;
    carl.expect("[#later] <carl> later news").await;
    let args: Vec<String> = ["--nick", "tuic", "--login", &addr]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut other = Client::start_env("tuic2", &args, &[("NATTER_PASSWORD", "hidden passphrase")]);
    other.expect("-- you are signed in as tuic").await;
    other.send("/join #later").await;
    other.expect("[#later] <carl> later news").await;
    tmux.wait_for("tuic", "#later").await;
    other.close_stdin();
    assert!(other.exit_status().await.success());
    carl.close_stdin();
    assert!(carl.exit_status().await.success());
    assert_eq!(topic_line(&tmux.screen("tuic")).trim(), "#work");
    // The person's pick stays: Alt+1 (the first room) and a line said in #work meanwhile.
    tmux.keys("tuic", "M-1");
    tmux.wait("tuic", "#aaa open", |s| topic_line(s).trim() == "#aaa")
        .await;
    bob.send("more news").await;
    bob.expect("[#work] <bob> more news").await;
    tmux.wait_for("tuic", "#work (1)").await;
    assert_eq!(topic_line(&tmux.screen("tuic")).trim(), "#aaa");
    tmux.type_until("tuic", "/quit", "natter exited with 0")
        .await;
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// Ctrl+C at the password prompt ends natter with 130 (as SIGINT would) and leaves the shell's
/// terminal as it was: echo and line editing on (rpassword's prompt left both off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_the_password_prompt_gives_the_terminal_back_as_it_was() {
    let tmux = Tmux::new("pwint");
    let script = "\"$0\" --nick tuib --login 127.0.0.1:9; echo \"natter exited with $?\"; \
         stty -a | tr ' ;' '\\n\\n' | grep -x -e -echo -e echo -e -icanon -e icanon \
         | tr '\\n' ' '; echo; exec sleep 60";
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "tuib",
        "-x",
        "100",
        "-y",
        "24",
        "env",
        "-u",
        "NATTER_PASSWORD",
        &format!("XDG_CONFIG_HOME={}", config_home().display()),
        "sh",
        "-c",
        script,
        env!("CARGO_BIN_EXE_natter"),
    ]);
    tmux.wait_for("tuib", "password for tuib:").await;
    tmux.run(&["send-keys", "-t", "tuib", "-l", "half"]);
    tmux.keys("tuib", "C-c");
    tmux.wait_for("tuib", "natter exited with 130").await;
    let screen = tmux
        .wait("tuib", "the terminal's modes", |s| s.contains("icanon"))
        .await;
    assert!(screen.contains("icanon echo"), "{screen}");
    assert!(!screen.contains("half"), "{screen}");
}

/// A direct conversation in the TUI: its side pane names the two people (not "0 here"), it
/// follows the peer's rename rather than splitting in two, and a `/login` typed there is not
/// brought back by Up (the password would be on the screen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_conversation_follows_a_rename_and_up_never_shows_a_password() {
    let (server, addr) = server().await;
    let tmux = Tmux::new("direct");
    tmux.start_until("alice", &addr.to_string(), "-- you are in #lobby")
        .await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect("-- connected as bob").await;
    tmux.wait_for("alice", "-- bob joined #lobby").await;

    bob.send("/msg alice psst").await;
    tmux.wait_for("alice", "2 @bob (1, @1)").await;
    tmux.keys("alice", "M-2");
    let screen = tmux.wait_for("alice", "<bob> psst").await;
    assert_eq!(members(&screen), ["direct", "bob", "alice"], "{screen}");

    bob.send("/nick robert").await;
    bob.expect("-- you are now known as robert").await;
    bob.send("/msg alice still me").await;
    let screen = tmux.wait_for("alice", "<robert> still me").await;
    assert!(screen.contains("-- bob is now known as robert"), "{screen}");
    assert!(screen.contains("2 @robert"), "{screen}");
    assert!(!screen.contains("@bob"), "one conversation: {screen}");
    assert_eq!(members(&screen), ["direct", "robert", "alice"], "{screen}");
    // Typed there, it reaches the new nick.
    tmux.type_line("alice", "hi robert");
    bob.expect("*alice* hi robert").await;

    tmux.type_until(
        "alice",
        "/login alice not-the-password",
        "wrong account name or password",
    )
    .await;
    tmux.keys("alice", "Up");
    let screen = tmux.wait_for("alice", "> hi robert").await;
    assert!(!screen.contains("not-the-password"), "{screen}");

    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// A new user's first screen says where to start; `/msg bob ...` typed in a room says what it
/// sent there (the line goes to `@bob`, out of sight: Enter seemed to do nothing); `/query bob`
/// opens the direct conversation, as in IRC clients (it was a usage error), and
/// `/query bob text` sends there and opens it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msg_from_a_room_says_what_it_sent_and_query_opens_the_conversation() {
    let (server, addr) = server().await;
    let tmux = Tmux::new("query");
    let screen = tmux
        .start_until("alice", &addr.to_string(), "-- you are in #lobby")
        .await;
    assert!(
        screen.contains("> type to talk; /help lists commands and keys"),
        "{screen}"
    );
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect("-- connected as bob").await;
    tmux.wait_for("alice", "-- bob joined #lobby").await;

    tmux.type_line("alice", "/msg bob first words");
    bob.expect("*alice* first words").await;
    // Said at once; the conversation is listed once the session has the line.
    let screen = tmux
        .wait("alice", "the line said and @bob listed", |s| {
            s.contains("-> *bob* first words") && s.contains("2 @bob")
        })
        .await;
    assert!(topic_line(&screen).starts_with(" #lobby"), "{screen}");
    // As README, line mode and the page say it, without a notice's dashes.
    assert!(!screen.contains("-- -> *bob*"), "{screen}");
    assert!(!screen.contains("type to talk"), "{screen}");

    let screen = tmux
        .type_until("alice", "/query bob", "@bob: direct messages")
        .await;
    assert!(screen.contains("<alice> first words"), "{screen}");
    assert!(!screen.contains("usage"), "{screen}");
    // Typed in the conversation with bob: no "->" line, the line itself is there.
    tmux.type_line("alice", "/msg bob second");
    bob.expect("*alice* second").await;
    let screen = tmux.wait_for("alice", "<alice> second").await;
    assert!(!screen.contains("-> *bob* second"), "{screen}");

    tmux.keys("alice", "M-1");
    tmux.wait("alice", "#lobby open", |s| {
        topic_line(s).starts_with(" #lobby")
    })
    .await;
    tmux.type_until("alice", "/query carol", "@carol: direct messages")
        .await;
    tmux.keys("alice", "M-1");
    tmux.wait("alice", "#lobby open", |s| {
        topic_line(s).starts_with(" #lobby")
    })
    .await;
    tmux.type_line("alice", "/QUERY bob third");
    bob.expect("*alice* third").await;
    let screen = tmux.wait_for("alice", "<alice> third").await;
    assert!(topic_line(&screen).starts_with(" @bob"), "{screen}");

    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// `natter` run bare, as a new user does first: the screen says which server it tries, that
/// it is only the default, and how to choose one (nothing said where to look when nothing
/// listened there). Given a server, it is not said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_a_server_the_first_screen_says_which_it_tries_and_how_to_choose() {
    let tmux = Tmux::new("bare");
    let config_home = format!("XDG_CONFIG_HOME={}", config_home().display());
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "bare",
        "-x",
        "100",
        "-y",
        "24",
        "env",
        &config_home,
        "USER=newbie",
        env!("CARGO_BIN_EXE_natter"),
    ]);
    let screen = tmux
        .wait_for("bare", "no server given: trying 127.0.0.1:8000")
        .await;
    // Wrapped in the pane: the words, whatever the rows.
    let words = screen
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("(the default) as newbie; to choose: natter --nick NICK HOST:PORT"),
        "{screen}"
    );
    assert!(words.contains("natter/config.toml"), "{screen}");

    let (server, addr) = server().await;
    let screen = tmux
        .start_until("given", &addr.to_string(), "-- you are in #lobby")
        .await;
    assert!(!screen.contains("no server given"), "{screen}");
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// `--remember` in the full-screen client: the next `--login` signs in with the kept key and
/// asks for no password; once the server refuses the key (the device forgotten from another
/// client) and no password is at hand, the screen is given back, natter says why, asks for the
/// password on the terminal, and starts again signed in with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_terminal_asks_for_the_password_once_its_key_is_refused() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let state_home = format!("XDG_STATE_HOME={}", state.path().display());
    let mut reg = Client::start_env(
        "tuir",
        &[
            "--nick".into(),
            "tuir".into(),
            "--remember".into(),
            addr.to_string(),
        ],
        &[("XDG_STATE_HOME", &state.path().display().to_string())],
    );
    reg.expect("-- connected as tuir").await;
    reg.send("/register remembered-passphrase").await;
    reg.expect_containing("-- this device is remembered: its key is kept in ")
        .await;
    reg.close_stdin();
    assert!(reg.exit_status().await.success());

    let tmux = Tmux::new("remember");
    let start = |name: &str| {
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "24",
            "env",
            "-u",
            "NATTER_PASSWORD",
            &format!("XDG_CONFIG_HOME={}", config_home().display()),
            &state_home,
            "sh",
            "-c",
            "\"$0\" \"$@\"; echo \"natter exited with $?\"; exec sleep 60",
            env!("CARGO_BIN_EXE_natter"),
            "--nick",
            "tuir",
            "--login",
            &addr.to_string(),
        ]);
    };
    // No prompt: the key signs in.
    start("first");
    tmux.wait_for("first", "[Connected] tuir · signed in as tuir")
        .await;
    assert!(!tmux.screen("first").contains("password for"));
    tmux.type_until("first", "/quit", "natter exited with 0")
        .await;

    // Forgotten from another client.
    let mut other = Client::start_env(
        "tuir",
        &[
            "--nick".into(),
            "tuir".into(),
            "--login".into(),
            addr.to_string(),
        ],
        &[("NATTER_PASSWORD", "remembered-passphrase")],
    );
    other.expect("-- you are signed in as tuir").await;
    other.send("/devices").await;
    let line = other
        .expect_where("the device", |l| l.contains("\"natter on "))
        .await;
    let id = line["-- ".len().."-- ".len() + 8].to_owned();
    other.send(&format!("/devices forget {id}")).await;
    other.expect_containing(&id).await;
    other.close_stdin();
    assert!(other.exit_status().await.success());

    start("second");
    let screen = tmux.wait_for("second", "password for tuir:").await;
    assert!(
        screen.contains("natter: the server refused this device's key"),
        "{screen}"
    );
    tmux.run(&["send-keys", "-t", "second", "-l", "remembered-passphrase"]);
    tmux.keys("second", "Enter");
    tmux.wait_for("second", "[Connected] tuir · signed in as tuir")
        .await;
    tmux.type_until("second", "/quit", "natter exited with 0")
        .await;
    let dir = state.path().join("natter").join("devices");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "the refused key's file is deleted, and --login alone asks for no new key"
    );
    server.shutdown().await.expect("server shuts down");
}

/// An emoji sequence (a family joined by zero width joiners, a skin tone, an emoji with a
/// variation selector) was drawn as one glyph two columns wide; tmux 3.3 draws a skin tone 4
/// columns wide and `❤️` or `🏳️‍🌈` 1 (and xterm a family 6), so the rest of the row moved or
/// was overwritten, and leftovers stayed on screen. Drawn as the emoji they are made of, each
/// as wide on every terminal: every row's text is whole and the member list's rule in its
/// place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emoji_sequences_leave_the_rows_layout_in_place() {
    use unicode_width::UnicodeWidthStr;
    let (server, addr) = server().await;
    let tmux = Tmux::new("emoji");
    let clean = tmux
        .start_until("alice", &addr.to_string(), "-- you are in #lobby")
        .await;
    let sent = [
        ("👨\u{200d}👩\u{200d}👧", "👨👩👧"),
        ("👍🏽", "👍"),
        ("❤\u{fe0f}", "❤"),
        ("🏳\u{fe0f}\u{200d}🌈", "🏳🌈"),
        ("🇫🇷", "🇫🇷"),
    ];
    for (i, (e, _)) in sent.iter().enumerate() {
        tmux.type_line("alice", &format!("m{i} a{e}b END{i}"));
        tmux.wait_for("alice", &format!("END{i}")).await;
    }
    let screen = tmux
        .wait("alice", "every line", |s| s.contains("END4"))
        .await;
    // The message pane's part of a row: between the conversation list's rule and the member
    // list's, in columns.
    let pane_cols = |row: &str| {
        let parts: Vec<&str> = row.split('│').collect();
        assert!(parts.len() >= 3, "{row:?}");
        parts[1].width()
    };
    let notice = clean
        .lines()
        .find(|l| l.contains("-- you are in #lobby"))
        .expect("the notice");
    for (i, (_, drawn)) in sent.iter().enumerate() {
        let row = screen
            .lines()
            .find(|l| l.contains(&format!(" m{i} ")))
            .unwrap_or_else(|| panic!("no m{i}:\n{screen}"));
        assert!(
            row.contains(&format!("m{i} a{drawn}b END{i}")),
            "{row:?}\n{screen}"
        );
        assert_eq!(pane_cols(row), pane_cols(notice), "{row:?}\n{screen}");
    }
    assert!(
        !screen.contains(['\u{200d}', '\u{fe0f}', '\u{1f3fd}']),
        "no dressing drawn, no leftovers:\n{screen}"
    );
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}

/// PgUp at the top asked for a room's older lines, and PgDn, pressed before they came, took the
/// view back to the newest lines; when they came the view jumped up to them, as it does for
/// `/history`, and read "scrolled up" as if PgDn had done nothing (seen once in the fortieth
/// session as "scrolled up 1"). A screen taller than the room's replay: PgUp asks at once,
/// and PgDn is sent with it, most often read before the answer comes (a race: before the fix
/// this failed in one run of two, "scrolled up 8"; with it, PgDn after the answer ends at the
/// bottom too, so it never fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgdn_before_older_lines_come_keeps_the_view_at_the_newest_lines() {
    let (server, addr) = server_with(long_history).await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    for i in 1..=60 {
        bob.send(&format!("old line {i:03}")).await;
    }
    bob.expect("[#lobby] <bob> old line 060").await;

    let tmux = Tmux::new("pgdn");
    tmux.start("alice", &addr.to_string());
    tmux.run(&["resize-window", "-t", "alice", "-x", "100", "-y", "58"]);
    tmux.wait_for("alice", "<bob> old line 060").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        tmux.run(&["send-keys", "-t", "alice", "PPage", "NPage"]);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let screen = tmux.screen("alice");
        assert!(
            !screen.contains("scrolled up") && screen.contains("<bob> old line 060"),
            "{screen}"
        );
    }
    tmux.keys("alice", "C-c");
    tmux.wait_for("alice", "natter exited with").await;
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    drop(tmux);
    server.shutdown().await.expect("server shuts down");
}
