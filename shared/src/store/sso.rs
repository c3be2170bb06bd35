//! SSO connections, their sign-in states and the identities they link, in the table.
