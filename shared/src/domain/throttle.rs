//! Sign-in throttling rules (pure): how long a subject (an account's email,
//! a source address) must wait after its strikes. A strike is a failed
//! attempt, or an attempt made while blocked, so a flood escalates to the
//! lockout without costing one password hash more.
//!
//! | strikes | wait |
//! |---|---|
//! | below `free` | none |
//! | `free` .. `lockout_at` | 1 s, 2 s, 4 s, ... (doubling) |
//! | `lockout_at` and more | the lockout (15 minutes), audited |
//!
//! Strikes are forgotten [`ThrottlePolicy::memory`] after the last one; a
//! successful sign-in clears an account's.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub free: i64,
    pub lockout_at: i64,
    pub lockout: Duration,
    pub memory: Duration,
}

/// Per account (the email as typed, whether or not it exists: the answers
/// must not tell).
pub const ACCOUNT: ThrottlePolicy = ThrottlePolicy {
    free: 5,
    lockout_at: 10,
    lockout: Duration::from_secs(15 * 60),
    memory: Duration::from_secs(3600),
};

/// Per source address: one address guessing across many accounts.
pub const ADDRESS: ThrottlePolicy = ThrottlePolicy {
    free: 20,
    lockout_at: 50,
    lockout: Duration::from_secs(15 * 60),
    memory: Duration::from_secs(3600),
};

/// Sign-ups and invitation acceptances per source address: every attempt
/// is a strike (each one hashes a password and may create a tenant), and
/// the tenth in an hour closes the door for the hour.
pub const SIGN_UP: ThrottlePolicy =
    ThrottlePolicy { free: 10, lockout_at: 10, lockout: Duration::from_secs(3600), memory: Duration::from_secs(3600) };

impl ThrottlePolicy {
    /// The wait after `strikes` strikes, if any.
    pub fn wait_after(&self, strikes: i64) -> Option<Duration> {
        if strikes < self.free {
            None
        } else if strikes >= self.lockout_at {
            Some(self.lockout)
        } else {
            let doublings = u32::try_from(strikes - self.free).unwrap_or(u32::MAX).min(20);
            Some(Duration::from_secs(1u64 << doublings).min(self.lockout))
        }
    }

    /// Whether the strike that brought the count to `strikes` started the
    /// lockout (audited once, not at every later strike).
    pub fn locks_out_at(&self, strikes: i64) -> bool {
        strikes == self.lockout_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_then_lock_out() {
        assert_eq!(ACCOUNT.wait_after(4), None);
        assert_eq!(ACCOUNT.wait_after(5), Some(Duration::from_secs(1)));
        assert_eq!(ACCOUNT.wait_after(6), Some(Duration::from_secs(2)));
        assert_eq!(ACCOUNT.wait_after(9), Some(Duration::from_secs(16)));
        assert_eq!(ACCOUNT.wait_after(10), Some(Duration::from_secs(900)));
        assert_eq!(ACCOUNT.wait_after(400), Some(Duration::from_secs(900)));
        assert!(ACCOUNT.locks_out_at(10) && !ACCOUNT.locks_out_at(11));
        assert_eq!(ADDRESS.wait_after(49), Some(Duration::from_secs(900)));
        assert_eq!(SIGN_UP.wait_after(9), None);
        assert_eq!(SIGN_UP.wait_after(10), Some(Duration::from_secs(3600)));
    }
}
