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
//! successful sign-in (or a password reset) clears an account's.
//!
//! Mail that anyone can make us send (password reset requests, verification
//! re-sends) is counted the same way, every request a strike:
//! [`RESET_ACCOUNT`], [`RESET_ADDRESS`], [`VERIFICATION_MAIL`].

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

/// Password-reset requests per account (the email as typed, existing or
/// not): each request is a strike, the third in an hour closes the door for
/// the hour. Three mails are plenty for a person; more is someone filling a
/// mailbox.
pub const RESET_ACCOUNT: ThrottlePolicy =
    ThrottlePolicy { free: 3, lockout_at: 3, lockout: Duration::from_secs(3600), memory: Duration::from_secs(3600) };

/// Password-reset requests per source address, across accounts: twenty an
/// hour.
pub const RESET_ADDRESS: ThrottlePolicy =
    ThrottlePolicy { free: 20, lockout_at: 20, lockout: Duration::from_secs(3600), memory: Duration::from_secs(3600) };

/// SSO sign-ins started from one address (initiate is public and stores a
/// state per call): 60 in ten minutes is more than a whole office behind one
/// NAT starts; past that, the door closes for the ten minutes.
pub const SSO_INITIATE: ThrottlePolicy =
    ThrottlePolicy { free: 60, lockout_at: 60, lockout: Duration::from_secs(600), memory: Duration::from_secs(600) };

/// Verification mails a signed-in user asks to be re-sent: three an hour.
pub const VERIFICATION_MAIL: ThrottlePolicy =
    ThrottlePolicy { free: 3, lockout_at: 3, lockout: Duration::from_secs(3600), memory: Duration::from_secs(3600) };

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
        assert_eq!(RESET_ACCOUNT.wait_after(2), None);
        assert_eq!(RESET_ACCOUNT.wait_after(3), Some(Duration::from_secs(3600)));
        assert_eq!(RESET_ADDRESS.wait_after(19), None);
        assert_eq!(VERIFICATION_MAIL.wait_after(3), Some(Duration::from_secs(3600)));
        // The sign-in lockout (audited, mailed) is the account policy's alone.
        assert!(RESET_ACCOUNT != ACCOUNT && VERIFICATION_MAIL != ACCOUNT);
    }
}
