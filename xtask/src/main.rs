//! natter's project commands, so a fresh clone needs nothing but cargo:
//!
//! - `cargo xtask up [--tls|--cluster] [--bind ADDR]`: build the page, start natter-server
//!   (:8000, on every interface unless `--bind` says otherwise) and natter-bridge (:8080), print
//!   how to join, stop both on Ctrl+C; with `--tls`, the server also over TLS on :8443 and the
//!   page on https, with a local CA and certificate made once in `<target>/tls/`; with
//!   `--cluster`, a nats-server with JetStream (:4222) and a second node (:8001) in one cluster
//!   (see `up.rs`);
//! - `cargo xtask test`: install what the tests need (wasm target, wasm-bindgen-cli, Chromium,
//!   tmux), then run every check and test;
//! - `cargo xtask web`: build the browser page into `<target>/www/`, with a `.br` and a `.gz` beside
//!   each text and wasm file for natter-bridge to send to browsers that take them;
//! - `cargo xtask fuzz --seconds N [--target T]`: run each cargo-fuzz target (or only `T`) for N
//!   seconds on nightly, and keep what crashes as regressions (see `fuzz.rs`);
//! - `cargo xtask bench [ARGS]`: build release binaries and run natter-bench (see bench/README.md).
//!
//! Installs are idempotent: each step checks first and only installs what is missing.
//!
//! The command line is read by clap: `cargo xtask --help` and `cargo xtask COMMAND --help` say
//! what each command and flag does, and a line it cannot read is refused in words (exit 2).
//!
//! `<target>` is cargo's target directory as `cargo metadata` reports it: `target/` in the
//! workspace, or wherever `CARGO_TARGET_DIR` (or `build.target-dir`) puts it.

mod fuzz;
mod install;
mod up;
mod www;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

/// natter's project commands (`cargo xtask <COMMAND> --help` says more of each).
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "natter's project commands: a fresh clone needs nothing but cargo",
    subcommand_required = true,
    arg_required_else_help = false
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Subcommand)]
enum Cmd {
    /// Build the page and the binaries, start natter-server (:8000, IRC on 127.0.0.1:6667) and
    /// natter-bridge (http://127.0.0.1:8080/), print how to join; Ctrl+C stops both
    Up(up::UpArgs),
    /// Install what the tests need (wasm target, wasm-bindgen-cli, Chromium, tmux, ...), then
    /// run every check and test, as CI does
    Test,
    /// Build the browser page into target/www/, with a .br and a .gz beside each text and wasm
    /// file
    Web,
    /// Run each cargo-fuzz target for N seconds on nightly, and keep what crashes as
    /// regressions (fuzz/regressions/)
    Fuzz(fuzz::FuzzArgs),
    /// Build release binaries and run natter-bench with ARGS (see bench/README.md); with none,
    /// the whole set
    Bench {
        /// natter-bench's own arguments (`cargo xtask bench fanout --clients 50`)
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Started by `up`: stops its services if `up` is killed (reads their pids and start times on stdin)
    #[command(hide = true)]
    Guard,
}

fn main() -> ExitCode {
    // A command line clap cannot read is said with the usage and exit status 2 (help and
    // `--version` on stdout, status 0), never as a failure with a backtrace.
    let cli = Cli::parse();
    let done = match cli.cmd {
        Cmd::Up(args) => up::up(args),
        Cmd::Test => test(),
        Cmd::Web => web(),
        Cmd::Fuzz(f) => fuzz::fuzz(f),
        Cmd::Bench { args } => bench(&args),
        Cmd::Guard => up::guard(),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the error and its causes on one line; `Debug` would add a backtrace
            // whenever RUST_BACKTRACE is set, which says nothing about a failed step.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory for this workspace (asked once of `cargo metadata`, which knows
/// `CARGO_TARGET_DIR` and `build.target-dir`).
pub fn target_dir() -> Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir.clone());
    }
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata's output")?;
    let dir = meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata did not say where the target directory is")?;
    Ok(DIR.get_or_init(|| dir).clone())
}

/// Runs a command in the workspace root, echoing it; fails if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", show(cmd));
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("could not start {}", show(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", show(cmd));
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> Result<()> {
    let started = std::time::Instant::now();
    install::wasm_target()?;
    install::wasm_bindgen_cli()?;
    install::apt_tools()?;
    install::lounge()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The API docs build without broken links.
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    // core must stay wasm-clean: this build fails if anything native slipped into it.
    run(cargo().args([
        "build",
        "-p",
        "natter-core",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    web()?;
    // Tests run the binaries (the CLI in line mode and under tmux, the server on SIGTERM).
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    eprintln!(
        "xtask: every check and test passed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// Builds the browser page into `<target>/www/`: the static files and the wasm-bindgen output,
/// each with its precompressed `.br` and `.gz`.
pub fn web() -> Result<()> {
    install::wasm_target()?;
    install::wasm_bindgen_cli()?;
    run(cargo().args([
        "build",
        "-p",
        "natter-web",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    let target = target_dir()?;
    let out = target.join("www");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    run(Command::new(install::wasm_bindgen_bin())
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(&out)
        .arg(target.join("wasm32-unknown-unknown/release/natter_web.wasm")))?;
    let static_dir = root().join("www/static");
    for entry in std::fs::read_dir(&static_dir).context("reading www/static")? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), out.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    www::precompress(&out)?;
    eprintln!("xtask: page built in {}", out.display());
    Ok(())
}

/// Builds the release binaries the benchmark starts and runs it with `args`; with none, the
/// issues' whole set: the fan-out matrix, the open loop, through the bridge, every feature on,
/// the cluster, idle memory, the big room and the connection storm (issue 22), and the
/// well-behaved clients' latency calm and under attack.
fn bench(args: &[String]) -> Result<()> {
    build_release(&["natter-server", "natter-bridge", "natter-bench"])?;
    let bin = target_dir()?.join("release/natter-bench");
    if !args.is_empty() {
        return run(Command::new(&bin).args(args));
    }
    for set in [
        &["fanout"][..],
        &["fanout", "--clients", "50", "--rate", "5000"],
        &[
            "fanout",
            "--clients",
            "10,50,200",
            "--targets",
            "natter,bridge",
        ],
        // Issue 22's "as features land": every feature on without a store (natter-all) beside
        // plain natter and the baseline, with the store, TLS and IRC in the same run.
        &[
            "fanout",
            "--clients",
            "50,200",
            "--targets",
            "baseline,natter,natter-all,natter-store,natter-tls,irc",
        ],
        // The cost of clustering (issue 23): a room over two nodes and NATS beside one node.
        &[
            "fanout",
            "--clients",
            "20,100",
            "--targets",
            "natter,natter-cluster2",
        ],
        &["idle"],
        // Issue 22's big room (3,000 members, 250 messages/s) and connection storm (5,000
        // clients at once), the figures its targets are set on.
        &["bigroom"],
        &["storm"],
        &["attack"],
    ] {
        run(Command::new(&bin).args(set))?;
    }
    Ok(())
}

/// `cargo build --release` of the given packages.
pub fn build_release(packages: &[&str]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    run(&mut cmd)
}

#[cfg(test)]
mod cli_tests {
    use super::{Cli, Cmd};
    use clap::{CommandFactory, Parser};

    fn parse(line: &str) -> Result<Cmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(line.split_whitespace()))
            .map(|c| c.cmd)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command line README, .ci/run and bench/README use still parses as before.
    #[test]
    fn known_commands_parse() {
        let up = |line: &str| match parse(line) {
            Ok(Cmd::Up(a)) => (a.tls, a.cluster, a.bind.to_string()),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(up("up"), (false, false, "0.0.0.0".into()));
        assert_eq!(up("up --tls"), (true, false, "0.0.0.0".into()));
        assert_eq!(up("up --cluster"), (false, true, "0.0.0.0".into()));
        assert_eq!(
            up("up --bind 127.0.0.1"),
            (false, false, "127.0.0.1".into())
        );
        assert_eq!(up("up --tls --bind ::1"), (true, false, "::1".into()));
        assert_eq!(parse("test").unwrap(), Cmd::Test);
        assert_eq!(parse("web").unwrap(), Cmd::Web);
        assert_eq!(
            parse("bench fanout --clients 10").unwrap(),
            Cmd::Bench {
                args: vec!["fanout".into(), "--clients".into(), "10".into()]
            }
        );
        assert_eq!(parse("bench").unwrap(), Cmd::Bench { args: vec![] });
        // After its command, natter-bench's flags are its own, `--help` too.
        assert_eq!(
            parse("bench attack --help").unwrap(),
            Cmd::Bench {
                args: vec!["attack".into(), "--help".into()]
            }
        );
        for line in [
            "fuzz",
            "fuzz --seconds 600",
            "fuzz --seconds 60 --target hub",
            "fuzz --seconds 5 --target hub --target wire --stable",
            "fuzz --stable --seconds 30",
        ] {
            assert!(matches!(parse(line), Ok(Cmd::Fuzz(_))), "{line}");
        }
    }

    #[test]
    fn bad_command_lines_are_refused_in_words() {
        for (line, said) in [
            ("", "requires a subcommand"),
            ("upp", "unrecognized subcommand 'upp'"),
            ("up --tsl", "unexpected argument '--tsl'"),
            ("up --tls --cluster", "cannot be used with"),
            (
                "up --bind everywhere",
                "invalid value 'everywhere' for '--bind <ADDR>'",
            ),
            ("test --quick", "unexpected argument '--quick'"),
            ("web now", "unexpected argument 'now'"),
            (
                "fuzz --seconds soon",
                "invalid value 'soon' for '--seconds <N>'",
            ),
            ("fuzz --seconds 0", "at least 1 second"),
            ("fuzz --seconds soon", "a whole number of seconds"),
            (
                "fuzz --target nope",
                "invalid value 'nope' for '--target <T>'",
            ),
        ] {
            let err = parse(line).expect_err(line).to_string();
            assert!(err.contains(said), "{line:?}: {err}");
        }
    }
}
