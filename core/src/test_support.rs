//! Shorthands the unit tests share: valid names and texts from string literals.

use crate::types::{Nick, RoomName, Text};

/// A nick the test knows is valid.
pub(crate) fn nick(s: &str) -> Nick {
    Nick::new(s).unwrap()
}

/// A room name the test knows is valid.
pub(crate) fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap()
}

/// A chat text the test knows is valid.
pub(crate) fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}
