//! TOTP multi-factor authentication: enrolment, codes, backup codes (no I/O).
