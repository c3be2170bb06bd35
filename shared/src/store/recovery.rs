//! One-time mail tokens (password reset, email verification) in the table.
