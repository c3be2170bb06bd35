//! (filled by the issue 14 work)
