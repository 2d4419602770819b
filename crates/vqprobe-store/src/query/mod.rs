//! The read side: what each endpoint asks the store.

pub mod analytics;
pub mod calls;
pub mod export;
