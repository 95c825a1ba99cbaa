//! `cargo xtask up`: the whole chat on this machine, in one command. Builds the page and the
//! binaries (release), runs natter-server on :8000 (and an IRC listener on 127.0.0.1:6667) and
//! natter-bridge on :8080, says how to join, and on Ctrl+C (or SIGTERM) stops both gracefully.

use crate::{build_release, install, root, target_dir, web};
use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SERVER: &str = "127.0.0.1:8000";
const BRIDGE: &str = "127.0.0.1:8080";
const IRC: &str = "127.0.0.1:6667";

pub fn up() -> Result<()> {
    install::wasm_target()?;
    web()?;
    build_release(&["natter-server", "natter-bridge", "natter"])?;
    let target = target_dir()?;
    let bin = target.join("release");

    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl+C handler")?;

    // One secret for the server and the bridge, new every time: the bridge proves itself with
    // it and may then name each browser's address.
    let secret = bridge_secret()?;
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new(bin.join("natter-server"))
            .env("NATTER_BRIDGE_SECRET", &secret)
            .args(["--listen", "0.0.0.0:8000", "--irc-listen", IRC])
            .current_dir(root())
            .spawn()
            .context("starting natter-server")?,
    );
    children.0.push(
        Command::new(bin.join("natter-bridge"))
            .env("NATTER_BRIDGE_SECRET", &secret)
            .args(["--listen", BRIDGE, "--server", SERVER, "--www"])
            .arg(target.join("www"))
            .current_dir(root())
            .spawn()
            .context("starting natter-bridge")?,
    );

    println!();
    println!("natter is up.");
    println!("  browser:   http://{BRIDGE}/");
    println!("  terminal:  {}/natter --nick yourname", bin.display());
    println!("  nc:        nc 127.0.0.1 8000   (or: telnet 127.0.0.1 8000)");
    println!("  IRC:       irssi -c 127.0.0.1 -p 6667   (any IRC client, {IRC})");
    println!("Press Ctrl+C to stop.");
    println!();

    loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            eprintln!("xtask: stopping");
            break;
        }
        if let Some(status) = children.any_exited() {
            eprintln!("xtask: a service exited ({status}); stopping the rest");
            break;
        }
    }
    children.stop(Duration::from_secs(10));
    Ok(())
}

/// The services started; stopped (SIGTERM, then SIGKILL after a grace period) also on error.
struct Children(Vec<Child>);

impl Children {
    fn any_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.iter_mut().find_map(|c| c.try_wait().ok().flatten())
    }

    fn stop(&mut self, grace: Duration) {
        for c in &self.0 {
            // SIGTERM lets each service tell its clients and flush (Ctrl+C already sent SIGINT
            // to the whole foreground group; a second signal is harmless). A direct call, not
            // the `kill` program: one process, never a group.
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for c in &mut self.0 {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// A fresh random bridge secret (hex of 24 bytes from the kernel's random source).
fn bridge_secret() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the bridge secret")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
