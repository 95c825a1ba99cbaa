//! Replays every input kept for the cargo-fuzz targets through the same drivers libFuzzer runs
//! (`natter_core::fuzzing`), on stable, in the regular test run:
//!
//! - `fuzz/regressions/<target>/`: inputs that once crashed a target (`cargo xtask fuzz` copies
//!   new crashes there; each was fixed, and this keeps it fixed);
//! - `fuzz/seeds/<target>/`: the small seed corpus the fuzzer starts from.
//!
//! The drivers are behind natter-core's `fuzzing` feature, which core's own dev-dependency on
//! itself turns on for its tests.

use natter_core::fuzzing::{Driver, TARGETS};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, by target.
fn inputs(kind: &str) -> Vec<(&'static str, Driver, PathBuf)> {
    let mut out = Vec::new();
    for &(name, run) in TARGETS {
        let dir = fuzz_dir().join(kind).join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            // Dot files (`.gitkeep`) keep empty directories in git.
            let hidden = f
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if f.is_file() && !hidden {
                out.push((name, run, f));
            }
        }
    }
    out
}

fn replay(kind: &str) -> usize {
    let all = inputs(kind);
    for (name, run, path) in &all {
        let bytes = std::fs::read(path).unwrap();
        eprintln!("{name}: {}", path.display());
        run(&bytes);
    }
    all.len()
}

#[test]
fn regressions_replay() {
    for &(name, _) in TARGETS {
        let dir = fuzz_dir().join("regressions").join(name);
        assert!(dir.is_dir(), "{} is missing", dir.display());
    }
    replay("regressions");
}

#[test]
fn seeds_replay() {
    let all = inputs("seeds");
    for &(name, _) in TARGETS {
        assert!(
            all.iter().any(|(t, _, _)| *t == name),
            "no seeds for the {name} target"
        );
    }
    assert_eq!(replay("seeds"), all.len());
}

/// Every target has a directory of regressions (possibly empty) and of seeds, and nothing else
/// is there: a file under a name that is no target would never be replayed.
#[test]
fn every_directory_is_a_target() {
    for kind in ["regressions", "seeds"] {
        for entry in std::fs::read_dir(fuzz_dir().join(kind)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{kind}/{name} is not a target"
            );
        }
    }
}

/// No input, and a few bytes of each value, run through every target without a failure (the
/// drivers themselves accept anything).
#[test]
fn drivers_take_anything() {
    for &(_, run) in TARGETS {
        run(&[]);
        for b in 0..=255u8 {
            run(&[b; 7]);
        }
    }
}
