//! SSO connections (OIDC and, later, SAML): what a valid connection is, and how IdP claims become a member and a role (no I/O).
