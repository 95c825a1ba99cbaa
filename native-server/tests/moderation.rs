//! Moderation with the real binary and its store: an nc founder registers a room and bans a
//! binary-protocol user (what the natter CLI speaks), who cannot rejoin; after a restart the
//! ban holds, and `natter-server audit` lists what was done.

mod support;

use natter_core::wire::{ClientMsg, ErrorKind, ServerMsg};
use std::path::Path;
use support::*;
use tokio::process::Child;

async fn start(dir: &Path) -> (Child, std::net::SocketAddr) {
    let (child, _log, addr) = spawn_stored_server(dir, &[]).await;
    (child, addr)
}

async fn refused_join(bob: &mut BinClient, room_: &str) -> ServerMsg {
    bob.send(&ClientMsg::Join { room: room(room_) }).await;
    bob.expect(
        |m| {
            matches!(
                m,
                ServerMsg::Error {
                    kind: ErrorKind::Banned,
                    ..
                }
            )
        },
        "a refusal: banned",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nc_founder_bans_a_user_who_stays_out_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path()).await;
    let (mut alice, _) = TextClient::welcomed(addr, "alice").await;
    alice.send("/nick alice").await;
    alice.send("/register correct horse").await;
    alice.expect_has("you are signed in as alice").await;
    alice.send("/join #mod").await;
    alice.send("/register #mod").await;
    alice.expect_has("alice set #mod +r").await;

    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    bob.join("#mod").await;
    alice.expect_has("bob joined #mod").await;
    alice.send("/ban bob 7d trolling").await;
    alice
        .expect_has("alice put bob out of #mod (trolling)")
        .await;
    bob.expect(
        |m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#mod"),
        "bob is out",
    )
    .await;
    let refusal = refused_join(&mut bob, "#mod").await;
    assert!(format!("{refusal:?}").contains("trolling"), "{refusal:?}");
    bob.send(&ClientMsg::Quit { reason: None }).await;
    bob.expect_closed().await;

    assert!(sigterm(&mut server).await.success());
    let (_server, addr) = start(dir.path()).await;
    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    refused_join(&mut bob, "#mod").await;
    // Someone else still gets in: the room outlived its members.
    let (mut carol, _) = BinClient::hello(addr, "carol", None).await;
    carol.join("#mod").await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["audit", "--room", "#mod", "--data-dir"])
        .arg(dir.path())
        .env_remove("NATTER_EPHEMERAL")
        .output()
        .expect("run natter-server audit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("#mod\talice\t+r")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("#mod\talice\t+b nick:bob")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("kick bob: trolling")),
        "{text}"
    );
}
