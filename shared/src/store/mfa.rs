//! MFA enrolments, backup codes and sign-in challenges in the table.
