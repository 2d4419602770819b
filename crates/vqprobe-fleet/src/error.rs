//! What can go wrong on the fleet side.

/// Fleet errors: the bus, the central store, or what travels between them.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A store: the probe's own database (the outbox), or a record it cannot map.
    #[error("store: {0}")]
    Store(#[from] vqprobe_store::StoreError),
    /// NATS or JetStream refused or did not answer.
    #[error("nats: {0}")]
    Nats(String),
    /// PostgreSQL refused or did not answer.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A PostgreSQL connection could not be had from the pool.
    #[error("postgres pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A bad URL or option.
    #[error("{0}")]
    Config(String),
    /// A thread or runtime could not start.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// Which.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

impl FleetError {
    /// A NATS error of any kind, as text (async-nats has one error type per call).
    pub fn nats(e: impl std::fmt::Display) -> FleetError {
        FleetError::Nats(e.to_string())
    }
}
