//! The example systemd unit (deploy/natter-server.service): it names this binary with flags the
//! binary takes, keeps the hardening the README promises, and, where `systemd-analyze` is
//! installed, passes `systemd-analyze verify` without a warning. Where it is not installed only
//! the first two are checked (the test says so on stderr).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/natter-server.service"
);

/// `[Section]` → key → values (a key may repeat), comments and blank lines skipped.
fn parse_unit(text: &str) -> HashMap<String, HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let mut section = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not key=value: {line}", i + 1));
        let s = section
            .clone()
            .unwrap_or_else(|| panic!("line {}: a key before any section", i + 1));
        out.entry(s)
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    out
}

#[test]
fn the_unit_runs_this_binary_hardened_with_its_data_dir_as_state_directory() {
    let text = std::fs::read_to_string(UNIT).expect("deploy/natter-server.service");
    let unit = parse_unit(&text);
    let service = &unit["Service"];
    let one = |k: &str| -> &str {
        let v = service.get(k).unwrap_or_else(|| panic!("no {k}="));
        assert_eq!(v.len(), 1, "{k}= given more than once");
        &v[0]
    };
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(exec[0], "/usr/local/bin/natter-server");
    // Its flags are ones the binary takes: clap checks every one before acting on --version.
    let out = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(&exec[1..])
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        &exec[1..],
        String::from_utf8_lossy(&out.stderr)
    );
    // The data dir is the state directory, the only place it may write.
    let state = one("StateDirectory");
    let data_dir = exec
        .windows(2)
        .find(|w| w[0] == "--data-dir")
        .map(|w| w[1])
        .expect("--data-dir in ExecStart");
    assert_eq!(data_dir, format!("/var/lib/{state}"));
    assert_eq!(one("ProtectSystem"), "strict");
    assert!(one("ExecReload").contains("-HUP $MAINPID"));
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("User", "natter"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    assert_eq!(unit["Install"]["WantedBy"], ["multi-user.target"]);
    // RUST_LOG replaces the binary's default filter: it must keep the NATS client's own
    // per-reconnection-attempt lines out too (a cluster node's NATS outage is said once by
    // natter-cluster, not once a second by the client).
    let env = one("Environment");
    let filter = env
        .strip_prefix("RUST_LOG=")
        .unwrap_or_else(|| panic!("{env}"));
    assert!(
        filter.split(',').any(|d| d == "async_nats=warn"),
        "{filter}"
    );
}

/// `systemd-analyze verify` of the unit with ExecStart pointed at the binary just built (the
/// installed path does not exist here): its exit status and what it printed.
fn verify(unit_text: &str, dir: &Path) -> (bool, String) {
    let path: PathBuf = dir.join("natter-server.service");
    let text = unit_text.replace(
        "/usr/local/bin/natter-server",
        env!("CARGO_BIN_EXE_natter-server"),
    );
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn systemd_analyze_verify_passes_without_a_warning() {
    let present = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!(
            "systemd-analyze is not installed: only the unit's contents are checked \
             (the_unit_runs_this_binary_hardened_with_its_data_dir_as_state_directory)"
        );
        return;
    }
    let text = std::fs::read_to_string(UNIT).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, said) = verify(&text, dir.path());
    let about_it: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("natter-server"))
        .collect();
    assert!(ok && about_it.is_empty(), "systemd-analyze verify: {said}");
    // And it would notice: a value it cannot read is a warning about the unit.
    let broken = text.replace("ProtectSystem=strict", "ProtectSystem=bogus");
    let (_, said) = verify(&broken, dir.path());
    assert!(
        said.contains("ProtectSystem") || said.contains("bogus"),
        "{said}"
    );
}
