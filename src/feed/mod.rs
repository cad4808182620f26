//! The feed itself, from raw bytes to our own entries: pure functions, no I/O.

pub mod charset;
pub mod dates;
pub mod extract;
pub mod identity;
pub mod normalise;
pub mod parse;
pub mod text;
pub mod transform;
