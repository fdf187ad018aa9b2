//! anteroom's rehearsal tool as a library, so tests can start its parts
//! in-process: `origin` is the demo booking site.

pub mod origin;
