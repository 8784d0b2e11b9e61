//! One module per command group: what each command reads, calls and prints.

pub mod admin;
pub mod cap;
pub mod jwt;
pub mod keys;
pub mod usage;
