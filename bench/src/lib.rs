//! anteroom's rehearsal tool as a library, so tests can start its parts
//! in-process: `origin` is the simulated booking site, `surge` the
//! opening-day crowd, `lazio` the replay with and without anteroom, `http`
//! the hot paths against nginx, `verify_draw` a room's draw recomputed
//! from its public JSON.

pub mod config_file;
pub mod fd_limit;
mod fetch;
pub mod http;
pub mod lazio;
pub mod origin;
pub mod surge;
pub mod verify_draw;
