//! Billing and metering (issue 13), free of I/O: money, tiered pricing,
//! metered components, usage records and their summary, accounts,
//! subscriptions, invoices and analytics. The store (`store::billing`)
//! keeps them; the `billing` route group and the billing worker use them.

pub mod account;
pub mod analytics;
pub mod component;
pub mod invoice;
pub mod money;
pub mod pricing;
pub mod subscription;
pub mod usage;
