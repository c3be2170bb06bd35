//! Mail through Amazon SES: invitations, verification, password reset and security notices.
