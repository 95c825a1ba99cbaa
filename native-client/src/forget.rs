//! `natter --forget-device`: signs in with the kept device key and signs out, which makes the
//! server revoke the key, then deletes the key file. The file goes whatever the server said:
//! when the server could not be told, natter says how to forget the device from elsewhere.

use crate::driver::{self, Command, DriverConfig};
use natter_core::session::{About, Event, Session};
use tokio::sync::mpsc;

/// What the server made of the kept key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Signed in with it and signed out: the server revoked it.
    Revoked,
    /// The server refused it: it was revoked already (forgotten elsewhere, the password
    /// changed, the account removed).
    AlreadyRefused,
    /// The server was not told (not reached, or no answer in time): why.
    NotTold(String),
}

/// Runs `session` (signing in with the kept key, required) until it has signed out, or it ends.
pub async fn run(session: Session, mut config: DriverConfig) -> Outcome {
    config.lockstep = true;
    let (cmd_tx, cmd_rx) = mpsc::channel(driver::COMMAND_QUEUE);
    let (ev_tx, mut ev_rx) = mpsc::channel(driver::EVENT_QUEUE);
    let driver = tokio::spawn(driver::run(session, config, cmd_rx, ev_tx));
    // Taken once the sign-in is answered (lockstep); then the input ends.
    let _ = cmd_tx
        .send(Command::Input {
            line: "/logout".to_owned(),
            to: None,
        })
        .await;
    drop(cmd_tx);
    let (mut signed_in, mut signed_out, mut refused) = (false, false, false);
    while let Some(ev) = ev_rx.recv().await {
        match ev {
            Event::SignedIn { .. } => signed_in = true,
            Event::SignedOut => signed_out = true,
            Event::Error {
                about: About::Account,
                ..
            } if !signed_in => refused = true,
            _ => {}
        }
    }
    let ended = driver.await;
    outcome(signed_in && signed_out, refused, ended)
}

/// The outcome, from what was seen and how the driver ended.
fn outcome(
    revoked: bool,
    refused: bool,
    ended: Result<Result<(), driver::DriverError>, tokio::task::JoinError>,
) -> Outcome {
    if revoked {
        return Outcome::Revoked;
    }
    if refused {
        return Outcome::AlreadyRefused;
    }
    Outcome::NotTold(match ended {
        Ok(Ok(())) => "the session ended before signing in".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("the connection task failed: {e}"),
    })
}
