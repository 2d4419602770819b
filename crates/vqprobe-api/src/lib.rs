//! The HTTP API (axum): analytics, call records, pushed metadata, export, health,
//! Prometheus metrics and the OpenAPI document, as DESIGN.md "HTTP API" lays out.
//!
//! The server runs on its own OS thread with a two-worker tokio runtime, so it never
//! competes with the capture path for more than that; SQLite work goes to tokio's
//! blocking pool over read-only WAL connections (`vqprobe_store::Pool`). [`spawn`]
//! prepares the database, binds, and returns a handle that
//! shuts the server down gracefully.
//!
//! One module per job: [`auth`] keys, [`error`] the error envelope, `extract` the
//! extractors that use it, [`analytics`] the summaries, [`query`] aggregate queries
//! (run by the store), [`calls`] call resources, [`export`] streamed CSV/JSON
//! (over `body`), [`health`] health and metrics, [`openapi`] the document, [`probe`] what
//! the process behind the API provides, `db` running store work off the async
//! threads, `params` parameter parsing, [`console`] the NOC web console (embedded
//! assets, served at `/`, `/calls` and `/calls/{call_id}`).

pub mod analytics;
pub mod auth;
mod body;
pub mod calls;
pub mod console;
mod db;
pub mod error;
pub mod export;
mod extract;
pub mod health;
pub mod openapi;
mod params;
pub mod probe;
pub mod query;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use tokio::sync::watch;
use vqprobe_store::CallStore;

pub use auth::{check_listen, startup_notice, KeySet, KEYS_ENV};
pub use error::ApiError;
pub use probe::Probe;

/// Largest request body accepted (pushed metadata and analytics queries are small).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest request target (path and query string) accepted; longer ones get a JSON 414.
/// Far above any real query (filters are at most 256 characters each) and far below
/// hyper's own request-line limit, whose 414 would have no body.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// How long shutdown waits for in-flight requests (a long export) before it drops
/// them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the API serves from.
pub struct ApiState {
    /// The SQLite call store (created and migrated by [`spawn`] if needed).
    pub db_path: PathBuf,
    /// Accepted bearer keys; empty means no authentication (loopback only, see
    /// [`check_listen`]).
    pub keys: KeySet,
    /// The process behind the API (metrics, capture state, pushed metadata); `None`
    /// in API-only use, where `/metrics` and `POST /v1/calls` answer 503.
    pub probe: Option<Arc<dyn Probe>>,
    /// Whether `/metrics` needs a key too.
    pub metrics_require_auth: bool,
    /// A store to serve from instead of the SQLite file at `db_path` (the fleet
    /// aggregator's PostgreSQL); `None` serves `db_path`.
    pub store: Option<Arc<dyn CallStore>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("db_path", &self.db_path)
            .field("keys", &self.keys)
            .field("probe", &self.probe.is_some())
            .field("metrics_require_auth", &self.metrics_require_auth)
            .field("store", &self.store.as_ref().map(|s| s.kind()))
            .finish()
    }
}

/// Shared by every handler.
pub(crate) struct App {
    db: Arc<dyn CallStore>,
    probe: Option<Arc<dyn Probe>>,
    /// The accepted keys (open routes that say more to a key holder check them).
    keys: Arc<auth::KeySet>,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone.
    Open,
    /// A valid key.
    Key,
    /// A key if `metrics_require_auth`, else anyone.
    Metrics,
}

type Route = (&'static str, &'static str, Access, MethodRouter<Arc<App>>);

/// The route table: the single place routes are declared, so the OpenAPI test can
/// compare it with the document (and the HTTP test calls each one).
fn routes() -> Vec<Route> {
    vec![
        ("GET", "/healthz", Access::Open, get(health::healthz)),
        ("GET", "/metrics", Access::Metrics, get(health::metrics)),
        ("GET", "/openapi.json", Access::Key, get(openapi::document)),
        ("GET", "/v1/analytics", Access::Key, get(analytics::summary)),
        ("POST", "/v1/analytics", Access::Key, post(query::run)),
        (
            "GET",
            "/v1/analytics/mno",
            Access::Key,
            get(analytics::by_mno),
        ),
        (
            "GET",
            "/v1/analytics/agents",
            Access::Key,
            get(analytics::by_agent),
        ),
        (
            "GET",
            "/v1/analytics/countries",
            Access::Key,
            get(analytics::by_country),
        ),
        ("GET", "/v1/calls", Access::Key, get(calls::list)),
        ("POST", "/v1/calls", Access::Key, post(calls::push)),
        ("GET", "/v1/calls/{call_id}", Access::Key, get(calls::get)),
        (
            "PUT",
            "/v1/calls/{call_id}/resolution",
            Access::Key,
            put(calls::set_resolution),
        ),
        (
            "GET",
            "/v1/agents/{agent_id}/conversations/export",
            Access::Key,
            get(export::export),
        ),
    ]
}

/// Every `(method, path)` the router serves (HEAD is implied by GET).
pub fn served_routes() -> Vec<(&'static str, &'static str)> {
    routes().into_iter().map(|(m, p, _, _)| (m, p)).collect()
}

/// The API as an axum router (for embedding; [`spawn`] serves it). The database must
/// have been opened read-write once (as [`spawn`] does), which creates the indexes
/// and rollup the handlers rely on.
pub fn router(state: ApiState) -> Router {
    let auth_required = !state.keys.is_empty();
    let keys = Arc::new(state.keys);
    let app = Arc::new(App {
        db: match state.store {
            Some(store) => store,
            None => Arc::new(vqprobe_store::Pool::new(state.db_path)),
        },
        probe: state.probe,
        keys: Arc::clone(&keys),
    });
    let mut open = Router::new();
    let mut keyed = Router::new();
    for (_, path, access, handler) in routes() {
        let needs_key = match access {
            Access::Open => false,
            Access::Key => true,
            Access::Metrics => state.metrics_require_auth,
        };
        if needs_key {
            keyed = keyed.route(path, handler);
        } else {
            open = open.route(path, handler);
        }
    }
    let keyed = keyed.route_layer(axum::middleware::from_fn_with_state(
        keys,
        auth::require_key,
    ));
    open.merge(keyed)
        .merge(console::routes(auth_required))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::uri_limit))
        .with_state(app)
}

/// A running API server.
#[derive(Debug)]
pub struct ApiHandle {
    local_addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl ApiHandle {
    /// The bound address (with the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish (up to [`SHUTDOWN_GRACE`]) and
    /// joins the server thread.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow!("the API server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        // A handle dropped without shutdown() still stops its server.
        let _ = self.stop_and_join();
    }
}

/// Binds `listen`, prepares the database (creating and migrating it if needed) and serves the API on a thread of its own until
/// [`ApiHandle::shutdown`]. Every error (address in use, unwritable database) comes
/// back here, before any thread starts.
///
/// The first start on an existing database builds the rollup from every stored call
/// while holding the write lock (about 2 s per million calls), so call this before
/// the store writer starts taking records.
pub fn spawn(listen: SocketAddr, state: ApiState) -> anyhow::Result<ApiHandle> {
    // Bind first: a taken port should fail at once, not after a rollup rebuild.
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("binding the API to {listen}"))?;
    // Opening read-write creates or migrates the schema and its derived objects.
    if state.store.is_none() {
        vqprobe_store::Store::open(&state.db_path)
            .with_context(|| format!("preparing {} for the API", state.db_path.display()))?;
    }
    listener
        .set_nonblocking(true)
        .context("setting the API socket non-blocking")?;
    let local_addr = listener.local_addr().context("reading the API address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_name("vqprobe-api")
        .enable_all()
        .build()
        .context("starting the API runtime")?;
    let app = router(state);
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("vqprobe-api".into())
        .spawn(move || serve(runtime, listener, app, stop_rx))
        .context("starting the API thread")?;
    Ok(ApiHandle {
        local_addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// The server thread's body.
fn serve(
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    app: Router,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut graceful = stop.clone();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|s| *s).await;
        });
        let mut deadline = stop;
        tokio::select! {
            r = server => r,
            _ = async move {
                let _ = deadline.wait_for(|s| *s).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => Ok(()),
        }
    });
    // Blocking tasks (an export's producer) notice the closed channel and stop; don't
    // wait on a stuck SQLite call forever.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result.context("API server")
}
