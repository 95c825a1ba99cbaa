//! The example systemd unit for the bridge (deploy/natter-bridge.service): it names this binary
//! with flags the binary takes, keeps the hardening of the server's unit, and, where
//! `systemd-analyze` is installed, passes `systemd-analyze verify` without a warning.

use std::process::Command;

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/natter-bridge.service"
);

/// The unit's `key=value` lines (comments and section headers left out), in order.
fn settings(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("not key=value: {l}"))
        })
        .collect()
}

#[test]
fn the_bridge_unit_runs_this_binary_hardened() {
    let text = std::fs::read_to_string(UNIT).expect("deploy/natter-bridge.service");
    let all = settings(&text);
    let one = |k: &str| -> &str {
        let v: Vec<&str> = all
            .iter()
            .filter(|(key, _)| *key == k)
            .map(|p| p.1)
            .collect();
        assert_eq!(v.len(), 1, "{k}= given {} times", v.len());
        v[0]
    };
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(exec[0], "/usr/local/bin/natter-bridge");
    // Its flags are ones the binary takes: clap checks every one before acting on --version.
    let out = Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
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
    assert!(one("ExecReload").contains("-HUP $MAINPID"));
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("WantedBy", "multi-user.target"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    // Two descriptors per browser at the default cap, with room to spare.
    let files: u64 = one("LimitNOFILE").parse().unwrap();
    let cap = natter_bridge::BridgeConfig::default().max_connections as u64;
    assert!(
        files >= 2 * cap + 64,
        "LimitNOFILE={files} for {cap} browsers"
    );
}

#[test]
fn systemd_analyze_verify_passes_on_the_bridge_unit() {
    let present = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("systemd-analyze is not installed: only the unit's contents are checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter-bridge.service");
    let text = std::fs::read_to_string(UNIT).unwrap().replace(
        "/usr/local/bin/natter-bridge",
        env!("CARGO_BIN_EXE_natter-bridge"),
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
    let about_it: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("natter-bridge"))
        .collect();
    assert!(
        out.status.success() && about_it.is_empty(),
        "systemd-analyze verify: {said}"
    );
}
