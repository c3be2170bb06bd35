//! Every list pages the same way (`?limit=`, `?cursor=`, `next_cursor`),
//! including the ones that used to answer everything at once.

#[allow(unused_imports)]
use platform_tests::*;
