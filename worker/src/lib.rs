//! Draining buffered requests into the booking store.
//!
//! [`Drainer`] runs one loop per `[[buffer]]`: take requests from the store
//! within the shared pace and in-flight cap, apply each to the buffer's
//! [`sink::Sink`], and record the outcome in its receipt. The worker binary
//! runs it against Redis; an embedded gateway (`backend = "memory"`) runs it
//! in-process.

pub mod admin;
pub mod drain;
pub mod sink;

pub use drain::{DrainError, Drainer};
