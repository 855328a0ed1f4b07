//! Caller-ID rotation: which of our numbers places the next call.

pub mod rotation;
