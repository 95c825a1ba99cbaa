//! Time as a value. Core never reads a clock: shells pass `now` in as milliseconds since any
//! fixed origin (the process start, the page load), and core hands deadlines back the same way.

use core::ops::{Add, Sub};
use serde::{Deserialize, Serialize};

/// A point in time, or a duration, in milliseconds. Which one is clear from the name it is bound to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Millis(pub u64);

impl Millis {
    /// Zero: the origin, or no time at all.
    pub const ZERO: Millis = Millis(0);

    /// `self - earlier`, or zero if `earlier` is later (clocks passed in may be coarse).
    pub fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add for Millis {
    type Output = Millis;
    fn add(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Millis {
    type Output = Millis;
    fn sub(self, rhs: Millis) -> Millis {
        self.since(rhs)
    }
}

impl core::fmt::Display for Millis {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}
