//! `cargo xtask` with a command line it cannot read says so in words with the usage and exits 2
//! (clap), even with `RUST_BACKTRACE=1` set (no backtrace, no "Error:" Debug dump); `--help` says
//! what each command and flag does.

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
    for (args, said) in [
        (&["up", "--nope"][..], "unexpected argument '--nope'"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["test", "--quick"], "unexpected argument '--quick'"),
        (
            &["fuzz", "--target", "nope"],
            "possible values: wire, hub, command, session",
        ),
        (&[], "requires a subcommand"),
    ] {
        let out = xtask(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(
            err.contains("Usage: cargo xtask") || err.contains("try '--help'"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("backtrace"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

fn help(args: &[&str]) -> String {
    let out = xtask(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

#[test]
fn help_says_what_each_command_does() {
    let all = help(&["--help"]);
    assert!(all.contains("Usage: cargo xtask <COMMAND>"), "{all}");
    for (command, words) in [
        ("up", "start natter-server"),
        ("test", "run every check and test"),
        ("web", "Build the browser page"),
        ("fuzz", "cargo-fuzz target"),
        ("bench", "natter-bench"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.trim_start().starts_with(command) && l.contains(words)),
            "{command}: {all}"
        );
    }
    assert_eq!(help(&["help"]), all, "`help` is `--help`");
}

#[test]
fn up_and_test_help_say_what_each_flag_does() {
    let up = help(&["up", "--help"]);
    for (flag, words) in [
        ("--tls", "local CA"),
        ("--cluster", "nats-server"),
        ("--bind <ADDR>", "every interface"),
    ] {
        assert!(up.contains(flag), "{flag}: {up}");
        assert!(up.contains(words), "{flag}: {up}");
    }
    assert!(up.contains("127.0.0.1 keeps them to this machine"), "{up}");
    let test = help(&["test", "--help"]);
    assert!(test.contains("run every check and test"), "{test}");
    assert!(test.contains("Usage: cargo xtask test"), "{test}");
    let fuzz = help(&["fuzz", "--help"]);
    for flag in ["--seconds <N>", "--target <T>", "--stable"] {
        assert!(fuzz.contains(flag), "{flag}: {fuzz}");
    }
}
