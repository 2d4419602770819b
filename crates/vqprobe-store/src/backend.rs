//! The queries the API answers, as one trait over any call store: the probe's SQLite
//! ([`Pool`] implements it here) and the fleet aggregator's PostgreSQL (in
//! `vqprobe-fleet`). The HTTP handlers are written once against [`CallStore`]; each
//! store brings its own SQL dialect and answers with the same types, so both serve the
//! same JSON.
//!
//! Every method blocks: the API calls them on tokio's blocking pool.

use vqprobe_engine::record::{CallRecord, CallSummary, Resolution};

use crate::aggregate::{execute, scan_threads, ResultRow, HELD_VALUES};
use crate::error::StoreError;
use crate::plan::Plan;
use crate::pool::{Pool, Snapshot};
use crate::query::analytics::{breakdown_query, summary_query, Dim, Group, Summary};
use crate::query::calls::{list_calls, newest_created_at, CallQuery};
use crate::query::export::{export_chunk, Cell, ExportCursor};
use crate::time::DayWindow;

/// A row handed to the export, as cells in [`crate::columns::EXPORT_COLUMNS`] order.
pub type RowSink<'a> = dyn FnMut(&[Cell<'_>]) -> Result<(), StoreError> + 'a;

/// Which calls a query covers beyond its own parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only the calls of this probe (fleet stores; a probe's own store has one probe).
    pub probe_id: Option<String>,
}

/// The call store behind the API.
pub trait CallStore: Send + Sync {
    /// `"sqlite"` or `"postgres"`, for health output.
    fn kind(&self) -> &'static str;
    /// Whether records carry a `probe_id` that can be filtered and grouped on.
    fn has_probes(&self) -> bool;
    /// Totals and calls per day over the window.
    fn summary(
        &self,
        w: DayWindow,
        agent: Option<&str>,
        mno: Option<&str>,
        scope: &Scope,
    ) -> Result<Summary, StoreError>;
    /// Quality figures per MNO or agent over the window, most calls first.
    fn breakdown(&self, w: DayWindow, dim: Dim, scope: &Scope) -> Result<Vec<Group>, StoreError>;
    /// One page of calls, newest first, and how many match.
    fn list_calls(
        &self,
        q: &CallQuery,
        scope: &Scope,
    ) -> Result<(Vec<CallSummary>, u64), StoreError>;
    /// The full record, or `None` for an unknown id. In a fleet store several probes may
    /// hold the same id (one call seen by an SBC and a media server): without a probe in
    /// `scope`, the most recently created one.
    fn get_call(&self, call_id: &str, scope: &Scope) -> Result<Option<CallRecord>, StoreError>;
    /// Sets the NOC classification and returns the updated record, `None` when unknown.
    fn set_resolution(
        &self,
        call_id: &str,
        scope: &Scope,
        resolution: Resolution,
        classified_at: &str,
    ) -> Result<Option<CallRecord>, StoreError>;
    /// `created_at` of the newest call.
    fn newest_created_at(&self) -> Result<Option<String>, StoreError>;
    /// Runs aggregate queries over one snapshot; one result per plan, in order.
    fn aggregate(&self, plans: &[Plan], scope: &Scope) -> Result<Vec<Vec<ResultRow>>, StoreError>;
    /// One chunk of an agent's calls after `after`, oldest first; where the next starts.
    fn export_chunk(
        &self,
        agent_id: &str,
        scope: &Scope,
        after: Option<ExportCursor>,
        row: &mut RowSink<'_>,
    ) -> Result<Option<ExportCursor>, StoreError>;
}

/// A probe's store holds no `probe_id`: a filter on one is a client's mistake the API
/// reports before asking (see [`CallStore::has_probes`]).
fn no_probe(scope: &Scope) -> Result<(), StoreError> {
    match &scope.probe_id {
        None => Ok(()),
        Some(_) => Err(StoreError::Unsupported(
            "probe_id is a fleet column: ask `vqprobe aggregate`".into(),
        )),
    }
}

impl CallStore for Pool {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn has_probes(&self) -> bool {
        false
    }

    fn summary(
        &self,
        w: DayWindow,
        agent: Option<&str>,
        mno: Option<&str>,
        scope: &Scope,
    ) -> Result<Summary, StoreError> {
        no_probe(scope)?;
        self.read_blocking(|s| summary_query(s.conn(), w, agent, mno))
    }

    fn breakdown(&self, w: DayWindow, dim: Dim, scope: &Scope) -> Result<Vec<Group>, StoreError> {
        no_probe(scope)?;
        self.read_blocking(|s| breakdown_query(s.conn(), w, dim))
    }

    fn list_calls(
        &self,
        q: &CallQuery,
        scope: &Scope,
    ) -> Result<(Vec<CallSummary>, u64), StoreError> {
        no_probe(scope)?;
        self.read_blocking(|s| list_calls(s.conn(), q))
    }

    fn get_call(&self, call_id: &str, scope: &Scope) -> Result<Option<CallRecord>, StoreError> {
        no_probe(scope)?;
        self.read_blocking(|s| s.get_call(call_id))
    }

    fn set_resolution(
        &self,
        call_id: &str,
        scope: &Scope,
        resolution: Resolution,
        classified_at: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        no_probe(scope)?;
        self.write_blocking(|s| {
            if !s.set_resolution(call_id, resolution, classified_at)? {
                return Ok(None);
            }
            s.get_call(call_id)
        })
    }

    fn newest_created_at(&self) -> Result<Option<String>, StoreError> {
        self.read_blocking(|s| newest_created_at(s.conn()))
    }

    fn aggregate(&self, plans: &[Plan], scope: &Scope) -> Result<Vec<Vec<ResultRow>>, StoreError> {
        no_probe(scope)?;
        self.read_many(scan_threads(), |stores| {
            // One snapshot for the whole batch, on every connection, so its queries
            // agree with each other and a query's threads read the same calls.
            let mut snap = Snapshot::begin(stores)?;
            let (conn, others) = snap.connections();
            plans
                .iter()
                .map(|p| execute(conn, others, p, HELD_VALUES))
                .collect()
        })
    }

    fn export_chunk(
        &self,
        agent_id: &str,
        scope: &Scope,
        after: Option<ExportCursor>,
        row: &mut RowSink<'_>,
    ) -> Result<Option<ExportCursor>, StoreError> {
        no_probe(scope)?;
        self.read_blocking(|s| export_chunk(s.conn(), agent_id, after, row))
    }
}
