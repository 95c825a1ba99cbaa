//! `natter --forget-device`: signs in with the kept device key and signs out, which makes the
//! server revoke the key, then deletes the key file. The file goes whatever the server said:
//! when the server could not be told, natter says how to forget the device from elsewhere.

use crate::driver::{self, Command, DriverConfig};
use natter_core::session::{About, Event, Session};
use natter_core::wire::ErrorKind;
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
    let mut seen = Seen::default();
    while let Some(ev) = ev_rx.recv().await {
        seen.see(&ev);
    }
    let ended = driver.await;
    outcome(seen.signed_in && seen.signed_out, seen.refused, ended)
}

/// What the events said so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    signed_in: bool,
    signed_out: bool,
    /// The key was refused before any sign-in: `SignInFailed`, or `Throttled` (a key that is
    /// not the account's, while the account or the address waits; the account's own key is
    /// never throttled so). Not `Unavailable` (the server busy checking passwords, asked again
    /// later): that says nothing of the key.
    refused: bool,
}

impl Seen {
    fn see(&mut self, ev: &Event) {
        match ev {
            Event::SignedIn { .. } => self.signed_in = true,
            Event::SignedOut => self.signed_out = true,
            Event::Error {
                about: About::Account,
                kind: Some(ErrorKind::SignInFailed | ErrorKind::Throttled),
                ..
            } if !self.signed_in => self.refused = true,
            _ => {}
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: ErrorKind) -> Event {
        Event::Error {
            kind: Some(kind),
            about: About::Account,
            text: "t".into(),
        }
    }

    #[test]
    fn only_a_refusal_of_the_key_says_it_was_forgotten_already() {
        for (kind, refused) in [
            (ErrorKind::SignInFailed, true),
            (ErrorKind::Throttled, true),
            // The server busy checking passwords: the key may well be good.
            (ErrorKind::Unavailable, false),
        ] {
            let mut seen = Seen::default();
            seen.see(&error(kind));
            assert_eq!(seen.refused, refused, "{kind:?}");
            let said = outcome(seen.signed_in && seen.signed_out, seen.refused, Ok(Ok(())));
            assert_eq!(
                matches!(said, Outcome::AlreadyRefused),
                refused,
                "{kind:?}: {said:?}"
            );
        }
    }
}
