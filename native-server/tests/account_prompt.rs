//! `natter-server account add|passwd` asking for the password on a real terminal (tmux): echo
//! is off before the prompt is written, the typed password never shows, and Ctrl+C there ends
//! the command with 130 and gives the shell its terminal back as it was (echo and line editing
//! on), with nothing changed. The prompt is the one `natter --login` uses (natter-ops).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of this test's own (tests run side by side), killed when dropped.
struct Tmux {
    socket: String,
    conf: PathBuf,
}

impl Tmux {
    fn new(test: &str) -> Tmux {
        let socket = format!("natter-srv-test-{}-{test}", std::process::id());
        let conf = std::env::temp_dir().join(format!("{socket}.conf"));
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

    /// `natter-server account ARGS --data-dir DIR` in a shell that prints its exit status and
    /// the terminal's echo and icanon modes afterwards.
    fn start(&self, session: &str, dir: &Path, args: &[&str]) {
        let script = "\"$0\" \"$@\"; echo \"exited with $?\"; \
             stty -a | tr ' ;' '\\n\\n' | grep -x -e -echo -e echo -e -icanon -e icanon \
             | tr '\\n' ' '; echo; exec sleep 60";
        let dir = dir.display().to_string();
        let mut all = vec![
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "24",
            "env",
            "-u",
            "NATTER_PASSWORD",
            "-u",
            "NATTER_CONFIG",
            "-u",
            "NATTER_DATA_DIR",
            "-u",
            "NATTER_EPHEMERAL",
            "sh",
            "-c",
            script,
            env!("CARGO_BIN_EXE_natter-server"),
            "account",
        ];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data-dir", &dir]);
        self.run(&all);
    }

    fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
    }

    fn literal(&self, target: &str, text: &str) {
        self.run(&["send-keys", "-t", target, "-l", text]);
    }

    fn keys(&self, target: &str, keys: &str) {
        self.run(&["send-keys", "-t", target, keys]);
    }

    fn wait(&self, target: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen(target);
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{target}: no {what} within {WAIT:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, target: &str, text: &str) -> String {
        self.wait(target, text, |s| s.contains(text))
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

/// `natter-server account list` on `dir`: its stdout.
fn list(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["account", "list", "--data-dir"])
        .arg(dir)
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_EPHEMERAL")
        .output()
        .expect("natter-server runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Typed at once after the prompt shows (echo went off before it was written), twice: the
/// account is made, the password never on the screen, the terminal as it was after.
#[test]
fn account_add_asks_twice_without_echo_and_leaves_the_terminal_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new("add");
    tmux.start("add", dir.path(), &["add", "carol"]);
    tmux.wait_for("add", "New password for carol:");
    tmux.literal("add", "hidden passphrase");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!tmux.screen("add").contains("hidden"), "echoed");
    tmux.keys("add", "Enter");
    tmux.wait_for("add", "Again:");
    tmux.literal("add", "hidden passphrase");
    tmux.keys("add", "Enter");
    let screen = tmux.wait_for("add", "exited with 0");
    assert!(!screen.contains("hidden"), "{screen}");
    let screen = tmux.wait("add", "the terminal's modes", |s| s.contains("icanon"));
    assert!(screen.contains("icanon echo"), "{screen}");
    assert!(list(dir.path()).contains("carol"), "the account was made");
}

/// Ctrl+C at the prompt: 130, echo and line editing on again, no account made.
#[test]
fn ctrl_c_at_the_account_password_prompt_gives_the_terminal_back_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new("int");
    tmux.start("int", dir.path(), &["add", "dave"]);
    tmux.wait_for("int", "New password for dave:");
    tmux.literal("int", "half");
    tmux.keys("int", "C-c");
    tmux.wait_for("int", "exited with 130");
    let screen = tmux.wait("int", "the terminal's modes", |s| s.contains("icanon"));
    // rpassword's prompt left `-echo -icanon` here.
    assert!(screen.contains("icanon echo"), "{screen}");
    assert!(
        screen.contains("interrupted at the password prompt; nothing was changed"),
        "{screen}"
    );
    assert!(!screen.contains("half"), "{screen}");
    assert!(!list(dir.path()).contains("dave"), "no account made");
}
