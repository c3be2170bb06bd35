//! Revocation that takes effect and throttled sign-in (issue 11).

#[allow(unused_imports)]
use platform_tests::*;
