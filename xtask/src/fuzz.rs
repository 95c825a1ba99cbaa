//! `cargo xtask fuzz [--seconds N] [--target T]... [--stable]`: coverage-guided fuzzing with
//! cargo-fuzz (libFuzzer) on nightly, installed first if missing.
//!
//! Each target in `fuzz/fuzz_targets/` (or each `--target`) runs for N seconds (default 60), one
//! after the other, starting from `fuzz/seeds/<target>/` and the corpus earlier runs left in
//! `fuzz/corpus/<target>/` (not committed). libFuzzer runs in fork mode, so a crash is written
//! down and fuzzing goes on. Every new crash, timeout or out-of-memory input is copied into
//! `fuzz/regressions/<target>/`, which the regular (stable) test run replays
//! (`core/tests/fuzz_regressions.rs`); the command then fails, naming them.
//!
//! `--stable` runs the older proptest pass (`core/tests/fuzz.rs`) for N seconds instead, on
//! stable Rust.

use crate::install;
use crate::{cargo, root, run};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const TARGETS: &[&str] = &["wire", "hub", "command", "session"];

/// `cargo xtask fuzz`'s options.
#[derive(Debug, PartialEq, clap::Args)]
pub struct FuzzArgs {
    /// How long each target runs (or, with --stable, the whole pass), in seconds
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = whole_seconds)]
    seconds: u64,
    /// Fuzz only this target (repeat for more); every target when none is named
    #[arg(
        long = "target",
        value_name = "T",
        value_parser = clap::builder::PossibleValuesParser::new(TARGETS)
    )]
    targets: Vec<String>,
    /// Run the older proptest pass (core/tests/fuzz.rs) on stable Rust instead of cargo-fuzz
    #[arg(long)]
    stable: bool,
}

/// `--seconds`: a whole number of seconds, at least 1.
fn whole_seconds(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("at least 1 second, or nothing is fuzzed".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("a whole number of seconds".into()),
    }
}

pub fn fuzz(args: FuzzArgs) -> Result<()> {
    let FuzzArgs {
        seconds,
        mut targets,
        stable,
    } = args;
    if stable {
        return run(cargo()
            .args([
                "test",
                "-p",
                "natter-core",
                "--release",
                "--test",
                "fuzz",
                "--",
                "--nocapture",
            ])
            .env("NATTER_FUZZ_SECONDS", seconds.to_string()));
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    install::cargo_fuzz()?;
    let fuzz_dir = root().join("fuzz");
    let mut found = Vec::new();
    for t in &targets {
        found.extend(run_target(&fuzz_dir, t, seconds)?);
    }
    if !found.is_empty() {
        let list: Vec<String> = found.iter().map(|p| format!("  {}", p.display())).collect();
        bail!(
            "the fuzzers found {} failing input(s), kept as regressions (cargo test -p \
             natter-core --test fuzz_regressions replays them):\n{}",
            found.len(),
            list.join("\n")
        );
    }
    eprintln!("xtask: fuzzing found nothing");
    Ok(())
}

/// Runs one target for `seconds`; returns the regression files it added.
fn run_target(fuzz_dir: &Path, target: &str, seconds: u64) -> Result<Vec<PathBuf>> {
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeds = fuzz_dir.join("seeds").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let before = files(&artifacts)?;
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    let status = install::nightly("cargo")
        .args([
            "fuzz",
            "run",
            "--release",
            "--debug-assertions",
            "--sanitizer",
            "none",
        ])
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // Keep going after a failure: each is written to the artifacts directory.
        .args([
            "-fork=1",
            "-ignore_crashes=1",
            "-ignore_timeouts=1",
            "-ignore_ooms=1",
        ])
        // An input that runs 10 s is a hang: a bug.
        .args(["-timeout=10", "-print_final_stats=1"])
        .current_dir(root())
        .status()
        .context("could not start cargo fuzz")?;
    let new: Vec<PathBuf> = files(&artifacts)?.difference(&before).cloned().collect();
    if !status.success() && new.is_empty() {
        bail!("cargo fuzz run {target} failed ({status}) without a failing input");
    }
    let keep = fuzz_dir.join("regressions").join(target);
    std::fs::create_dir_all(&keep)?;
    let mut kept = Vec::new();
    for name in new {
        let to = keep.join(&name);
        std::fs::copy(artifacts.join(&name), &to)
            .with_context(|| format!("copying {name:?} to {}", to.display()))?;
        eprintln!("xtask: {target}: kept {}", to.display());
        kept.push(to);
    }
    Ok(kept)
}

/// The names of the files directly in `dir`.
fn files(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            out.insert(PathBuf::from(entry.file_name()));
        }
    }
    Ok(out)
}
