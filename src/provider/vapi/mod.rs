//! Vapi: REST client, webhook authentication, `endedReason` mapping.
//! Source: providers.md §3.

pub mod client;
