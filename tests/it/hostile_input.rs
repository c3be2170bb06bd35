//! Inputs an attacker would send (issue 11): nulls where strings belong,
//! free-form JSON that storage cannot hold; each answers 4xx naming the
//! field, and every read keeps working afterwards.

#[allow(unused_imports)]
use platform_tests::*;
