//! Flood control's token bucket, one for both ends: the hub keeps one per connection (a command
//! with no token waits in the connection's queue until one refills, see `hub/ops.rs`), and the
//! session keeps a copy with the hub's rates so that what it sends never has to wait there.
//! Burst and refill are passed in rather than stored: the hub has them once, in its config.

use crate::time::Millis;

/// A token bucket holding at most `burst` tokens, refilled one per `refill`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: u32,
    /// When the last token was credited (or the bucket was last full).
    last: Millis,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(burst: u32, now: Millis) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, burst: u32, refill: Millis, now: Millis) {
        // Callers handle a zero refill (flood control off) before getting here.
        if self.tokens >= burst {
            self.last = now;
            return;
        }
        let step = refill.0.max(1);
        let n = now.since(self.last).0 / step;
        if n == 0 {
            return;
        }
        let room = u64::from(burst - self.tokens);
        if n >= room {
            self.tokens = burst;
            self.last = now;
        } else {
            // n < room <= u32::MAX, so the cast is exact.
            self.tokens += n as u32;
            self.last = Millis(self.last.0 + n * step);
        }
    }

    /// Takes a token if there is one. A zero `refill` turns flood control off: always true.
    pub(crate) fn take(&mut self, burst: u32, refill: Millis, now: Millis) -> bool {
        if refill == Millis::ZERO {
            return true;
        }
        self.refill(burst, refill, now);
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }

    /// Puts back a token taken for something that did not happen after all (at most a full
    /// bucket).
    pub(crate) fn give_back(&mut self, burst: u32) {
        self.tokens = (self.tokens + 1).min(burst);
    }

    /// When the next token will be there.
    pub(crate) fn next_token_at(&self, refill: Millis) -> Millis {
        self.last + Millis(refill.0.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady() {
        let r = Millis(200);
        let mut b = Bucket::new(3, Millis(0));
        assert!(b.take(3, r, Millis(0)));
        assert!(b.take(3, r, Millis(0)));
        assert!(b.take(3, r, Millis(0)));
        assert!(!b.take(3, r, Millis(199)));
        assert_eq!(b.next_token_at(r), Millis(200));
        assert!(b.take(3, r, Millis(200)));
        assert!(!b.take(3, r, Millis(300)));
        assert!(b.take(3, r, Millis(400)));
        // A long pause refills to the burst, no more.
        for _ in 0..3 {
            assert!(b.take(3, r, Millis(10_000)));
        }
        assert!(!b.take(3, r, Millis(10_000)));
    }

    #[test]
    fn zero_refill_is_off() {
        let mut b = Bucket::new(1, Millis(0));
        for _ in 0..1_000 {
            assert!(b.take(1, Millis::ZERO, Millis(0)));
        }
    }
}
