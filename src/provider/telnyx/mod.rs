//! Telnyx Call Control v2: REST client, webhook signatures (Ed25519), event mapping.
//! Source: providers.md §2.

pub mod client;
