//! The plain domain types every layer shares: records, requests, filters
//! and decisions, with no storage and no rule beyond their own fields.

pub mod agents;
pub mod audit;
pub mod capability;
pub mod keys;
pub mod quota;
pub mod refresh;
pub mod sessions;
pub mod usage;
