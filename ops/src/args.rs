//! Command-line parsing for natter's binaries, with the operator's own words for a bad value
//! that came from an environment variable: clap names the flag (`invalid value 'lots' for
//! '--max-connections <N>'`) even when the operator never typed it but set
//! `NATTER_MAX_CONNECTIONS`. Such an error is said in one line naming the variable; every other
//! error is clap's own words in one line. The binary logs it (`cannot start`), as every other
//! failure at start; `--help` and `--version` print as clap does.
//!
//! A blank variable (`NATTER_LISTEN=`, or only spaces: what an env file's empty line or a
//! compose file's `${NATTER_LISTEN}` left unset gives) is taken as unset, by [`parse`] for every
//! flag's variable and by [`env_var`] for those read otherwise (`NATTER_PASSWORD`; the bridge
//! secret is trimmed, and blank is none: [`crate::bridge_secret`]): clap would otherwise take
//! the empty text as the flag's value and refuse it in the flag's words (`invalid value '' for
//! '--log-format <FORMAT>'`).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Parser};
use std::ffi::{OsStr, OsString};

/// What a boolean flag's environment variable may hold (clap's `BoolishValueParser`).
pub const BOOLISH: &str = "true/false, yes/no, on/off or 1/0";

/// Parses the process's arguments and environment into `T`. `--help` and `--version` print and
/// exit as clap does; any other error is given back as one line for the binary to log before it
/// exits with status 2: `NAME=VALUE, for --flag: why` for a bad value from an environment
/// variable, else clap's own words (`invalid value 'lots' for '--max-connections <N>': ...`)
/// with its tips, without its usage block.
pub fn parse<T: Parser>() -> Result<T, String> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = without_blank_env(T::command(), &|name| std::env::var_os(name));
    let parsed = cmd
        .try_get_matches_from_mut(&argv)
        .and_then(|mut m| T::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(t) => Ok(t),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.format(&mut cmd).exit(),
            _ => Err(from_env(&e, &cmd, &argv, env_var)
                .unwrap_or_else(|| one_line(&e.format(&mut cmd).to_string()))),
        },
    }
}

/// Whether an environment variable's value is blank: empty, or only white space.
pub fn is_blank(value: &OsStr) -> bool {
    value.to_str().is_some_and(|v| v.trim().is_empty())
}

/// The environment variable `name`, `None` when it is unset or blank (see [`is_blank`]).
pub fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !is_blank(v))
}

/// `cmd` (and its subcommands) with the environment variable of every flag whose variable is
/// blank in `env` forgotten, so that clap takes the flag as not given.
pub fn without_blank_env(
    cmd: clap::Command,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> clap::Command {
    let cmd = cmd.mut_args(|a| {
        let blank = a
            .get_env()
            .and_then(|name| name.to_str())
            .and_then(env)
            .is_some_and(|v| is_blank(&v));
        if blank { a.env(None) } else { a }
    });
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    subs.iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |s| without_blank_env(s, env))
    })
}

/// clap's rendered error in one line: its first line without `error: `, then its tips, then
/// where the flags are listed (its usage block and blank lines left out).
pub fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("bad command line");
    let mut words = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    for tip in lines.filter(|l| l.starts_with("tip: ")) {
        words.push_str("; ");
        words.push_str(tip);
    }
    words.push_str(" (--help lists the flags)");
    words
}

/// The words for `e` if it is a bad value that came from an environment variable (the flag is
/// not in `argv`, which would win over it, and `env` has the variable set): `NAME=VALUE, for
/// --flag: why`. `None` for any other error.
pub fn from_env(
    e: &clap::Error,
    cmd: &clap::Command,
    argv: &[OsString],
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<String> {
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    // `--max-connections <N>`, `--ephemeral[=<BOOL>]`: the flag's long name comes first.
    let ContextValue::String(said) = e.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let long = said
        .split(|c: char| c.is_whitespace() || c == '[' || c == '=')
        .next()?
        .strip_prefix("--")?;
    let arg = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
    let name = arg.get_env()?.to_str()?;
    let value = env(name).filter(|v| !v.is_empty())?;
    if given(argv, long, arg.get_short()) {
        return None;
    }
    // A yes-or-no flag: one that takes no value, or whose value is `BoolishValueParser`'s
    // (`--ephemeral[=<BOOL>]`, whose possible values are said as true and false).
    let boolish = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
        || arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name())
            .eq(["true", "false"]);
    let why = if boolish {
        format!("expected {BOOLISH}")
    } else if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        format!("expected one of {}", valid.join(", "))
    } else if let Some(source) = std::error::Error::source(e) {
        source.to_string()
    } else {
        "not a valid value".to_owned()
    };
    Some(format!(
        "{name}={}, for --{long}: {why}",
        value.to_string_lossy()
    ))
}

/// Whether `argv` gives the flag `--long` (or `-short`) itself, before any `--`.
fn given(argv: &[OsString], long: &str, short: Option<char>) -> bool {
    let long = format!("--{long}");
    let long_eq = format!("{long}=");
    argv.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .take_while(|a| *a != "--")
        .any(|a| {
            a == long
                || a.starts_with(&long_eq)
                || short.is_some_and(|s| {
                    a.strip_prefix('-')
                        .is_some_and(|rest| !rest.starts_with('-') && rest.starts_with(s))
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(short, long, env = "TEST_MAX")]
        max: Option<usize>,
        /// A yes-or-no flag that may be given a value (`--quiet=false`), as natter-server's
        /// `--ephemeral`.
        #[arg(
            long,
            env = "TEST_QUIET",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            value_parser = clap::builder::BoolishValueParser::new()
        )]
        quiet: Option<bool>,
    }

    #[test]
    fn clap_errors_become_one_line_with_their_tips() {
        let e = Args::try_parse_from(["t", "--max", "x"]).expect_err("a bad value");
        let words = one_line(&e.to_string());
        assert!(
            words.starts_with("invalid value 'x' for '--max <MAX>': invalid digit"),
            "{words}"
        );
        assert!(!words.contains('\n') && words.ends_with("(--help lists the flags)"));
        let e = Args::try_parse_from(["t", "--maxx", "1"]).expect_err("no such flag");
        let words = one_line(&e.to_string());
        assert!(
            words.starts_with("unexpected argument '--maxx' found; tip: "),
            "{words}"
        );
        assert!(!words.contains("Usage"), "{words}");
    }

    #[test]
    fn a_bad_yes_or_no_with_an_optional_value_is_said_with_its_name() {
        let e = Args::try_parse_from(["t", "--quiet=maybe"]).expect_err("a bad value");
        let mut cmd = Args::command();
        cmd.build();
        let words = from_env(&e, &cmd, &[OsString::from("t")], |name| {
            (name == "TEST_QUIET").then(|| OsString::from("maybe"))
        });
        assert_eq!(
            words.as_deref(),
            Some("TEST_QUIET=maybe, for --quiet: expected true/false, yes/no, on/off or 1/0")
        );
    }

    #[test]
    fn a_blank_variable_is_taken_as_unset() {
        // NATTER_LISTEN= in an env file: clap took the empty text as the value and refused it
        // in the flag's words, or (a yes-or-no flag) as "false".
        let env = |name: &str| match name {
            "TEST_MAX" => Some(OsString::from("")),
            "TEST_QUIET" => Some(OsString::from("  ")),
            _ => None,
        };
        let cmd = without_blank_env(Args::command(), &env);
        assert!(cmd.get_arguments().all(|a| a.get_env().is_none()));
        // A variable with a value keeps it.
        let env = |name: &str| (name == "TEST_MAX").then(|| OsString::from("3"));
        let cmd = without_blank_env(Args::command(), &env);
        let kept: Vec<_> = cmd.get_arguments().filter_map(|a| a.get_env()).collect();
        assert_eq!(kept, ["TEST_MAX", "TEST_QUIET"]);
        assert!(is_blank(OsStr::new(" \t")) && !is_blank(OsStr::new(" x ")));
    }

    /// The words for `TEST_MAX=value` with `argv`. clap reads the real environment, which a
    /// test may not change: the error it gives for the variable is the one it gives for the
    /// same value after the flag.
    fn words(argv: &[&str], value: &str) -> Option<String> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let e = Args::try_parse_from(["t", "--max", value]).expect_err("a bad value");
        from_env(&e, &Args::command(), &argv, |name| {
            (name == "TEST_MAX").then(|| OsString::from(value))
        })
    }

    #[test]
    fn a_bad_value_from_a_variable_is_said_with_its_name() {
        assert_eq!(
            words(&["t"], "lots").as_deref(),
            Some("TEST_MAX=lots, for --max: invalid digit found in string")
        );
        // The flag given too, it won: clap's words about the flag stand.
        for argv in [&["t", "--max", "x"][..], &["t", "--max=x"], &["t", "-mx"]] {
            assert_eq!(words(argv, "lots"), None, "{argv:?}");
        }
        // After `--` it is no flag.
        assert!(words(&["t", "--", "--max"], "lots").is_some());
    }
}
