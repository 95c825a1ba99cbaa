//! `cargo xtask` with a command line it cannot read says so with the usage and exits 2, as
//! clap-based tools do, even with `RUST_BACKTRACE=1` set (no backtrace, no "Error:" Debug dump).

use std::process::Command;

fn xtask(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("xtask runs")
}

#[test]
fn unknown_argument_is_a_usage_error_without_backtrace() {
    for args in [&["up", "--nope"][..], &["frobnicate"], &[]] {
        let out = xtask(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains("usage: cargo xtask"), "{args:?}: {err}");
        assert!(!err.contains("backtrace"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    let out = xtask(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: cargo xtask"));
}
