//! The `any` server as a library: the HTTP client API, the extension socket and the
//! task table, assembled by [`app`] into one axum [`Router`].
//!
//! Runs in the `any serve` process (and in the integration tests, which call [`app`]
//! and [`serve`] on `127.0.0.1:0`). The CLI half of the `any` binary (`main.rs`,
//! `cli.rs`, `client.rs`, `browser.rs`) is not part of this library; it talks to a
//! server over HTTP only.
//!
//! Map: `api.rs` HTTP handlers and the JSON extractor; `extension.rs` the WebSocket loop;
//! `calls.rs` the task table (routing, deadlines, exactly-one answer); `error.rs` the one
//! error type of the HTTP side; `access.rs` who may connect (Host, Origin, token);
//! `token.rs` the per-user token file; `scripts.rs` hosted userscripts and ad-hoc scripts; `openapi.rs` the API description; `trace.rs` the live
//! frame trace (`GET /v1/trace`).

pub mod access;
pub mod api;
pub mod calls;
pub mod error;
pub mod extension;
pub mod openapi;
pub mod scripts;
pub mod token;
pub mod trace;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::MethodRouter;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use calls::Hub;
pub use error::Error;

/// The largest request body, WebSocket frame or result the server accepts: 64 MiB.
/// Larger requests get `413 too_large`; the server keeps serving.
pub const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The server's version, reported by `/v1/health`, `/v1/status` and `welcome`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The default of `any serve --max-calls`: how many calls may be in flight at once.
/// More are refused at once with `429 too_many_calls`.
pub const DEFAULT_MAX_CALLS: usize = 1024;

/// The default port of `any serve` and of every client subcommand.
pub const DEFAULT_PORT: u16 = 8765;

/// How the server behaves; every field comes from an `any serve` flag.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a call waits for a (matching) extension to connect before it fails
    /// with `no_extension` (`--connect-wait`, default 5 s).
    pub connect_wait: Duration,
    /// How often the server pings each extension (protocol default: 20 s).
    pub heartbeat: Duration,
    /// An extension that sends nothing (not even `pong`) for this long is dropped
    /// (default: three heartbeats).
    pub silence_limit: Duration,
    /// How long a new socket may take to send `hello` (default 10 s).
    pub hello_wait: Duration,
    /// The secret every client API request must send as `Authorization: Bearer`
    /// (`any serve` reads it from [`token::path`]; the default is a fresh random one).
    pub token: String,
    /// The `Origin`s accepted on the extension socket and the client API: the any
    /// extension's own, plus each `--allow-origin`. Compared exactly.
    pub allowed_origins: Vec<String>,
    /// How many calls may be in flight at once (`--max-calls`).
    pub max_calls: usize,
    /// Whether `POST /v1/run` runs ad-hoc scripts (`--allow-scripts`); refused with
    /// `scripts_disabled` otherwise.
    pub allow_scripts: bool,
    /// Where the hosted userscripts are kept (`--scripts-dir`, default
    /// `<data dir>/scripts`); `None` keeps them in memory only (tests).
    pub scripts_dir: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let heartbeat = Duration::from_millis(any_protocol::HEARTBEAT_MS);
        Config {
            connect_wait: Duration::from_secs(5),
            heartbeat,
            silence_limit: heartbeat * 3,
            hello_wait: Duration::from_secs(10),
            token: token::generate()
                .unwrap_or_else(|e| panic!("cannot make a token for the server: {e}")),
            allowed_origins: vec![any_protocol::EXTENSION_ORIGIN.to_owned()],
            max_calls: DEFAULT_MAX_CALLS,
            allow_scripts: false,
            scripts_dir: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub config: Arc<Config>,
    /// The address the server listens on, e.g. `127.0.0.1:8765`.
    pub listen: SocketAddr,
    /// Set to `true` to stop the server gracefully (`POST /v1/shutdown`, signals).
    pub shutdown: watch::Sender<bool>,
    /// One permit per call in flight, [`Config::max_calls`] in all.
    pub call_slots: Arc<tokio::sync::Semaphore>,
    /// The frame tap that `GET /v1/trace` watches.
    pub trace: trace::Tap,
    /// The hosted userscripts.
    pub scripts: Arc<scripts::Store>,
}

impl AppState {
    pub fn new(config: Config, listen: SocketAddr) -> Self {
        let (shutdown, _) = watch::channel(false);
        let scripts = scripts::Store::load(config.scripts_dir.clone()).unwrap_or_else(|e| {
            tracing::error!(
                "cannot read the hosted userscripts in {:?}: {e}; keeping scripts in memory only",
                config.scripts_dir
            );
            scripts::Store::load(None).unwrap_or_else(|_| unreachable!("no directory, no I/O"))
        });
        let hub = Arc::new(Hub::new(config.connect_wait, listen));
        hub.publish_scripts(scripts.frame());
        AppState {
            hub,
            scripts: Arc::new(scripts),
            call_slots: Arc::new(tokio::sync::Semaphore::new(config.max_calls)),
            config: Arc::new(config),
            listen,
            shutdown,
            trace: trace::Tap::default(),
        }
    }
}

/// One route of the API: the single list both [`app`] and the OpenAPI test read.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

/// Every route the server answers, in the order of the OpenAPI document.
pub fn routes() -> Vec<Route> {
    use axum::routing::{delete, get, post};
    let route = |method, path, handler| Route {
        method,
        path,
        handler,
    };
    vec![
        route("get", "/v1/health", get(api::health)),
        route("get", "/v1/status", get(api::status)),
        route("post", "/v1/call", post(api::call)),
        route("post", "/v1/shutdown", post(api::shutdown)),
        route("get", "/v1/openapi.json", get(api::openapi)),
        route("get", "/v1/extension", get(extension::upgrade)),
        route("get", "/v1/trace", get(trace::watch)),
        route("get", "/v1/scripts", get(scripts::list)),
        route("post", "/v1/scripts", post(scripts::add)),
        route("delete", "/v1/scripts/{name}", delete(scripts::remove)),
        route("post", "/v1/scripts/{name}/enable", post(scripts::enable)),
        route("post", "/v1/scripts/{name}/disable", post(scripts::disable)),
        route("post", "/v1/run", post(scripts::run)),
    ]
}

/// The whole server as a router: the routes of [`routes`], the body limit, the checks
/// of who may connect ([`access::guard`]: Host, Origin, token), and a fallback that
/// answers unknown paths in the API's error shape.
pub fn app(state: AppState) -> Router {
    let router = routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler));
    router
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `stop` resolves or `POST /v1/shutdown` arrives,
/// then closes the extension sockets (failing their calls) and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listen = listener.local_addr()?;
    if let Some(dir) = &config.scripts_dir {
        std::fs::create_dir_all(dir)?;
    }
    let state = AppState::new(config, listen);
    let hub = state.hub.clone();
    let mut shutdown_rx = state.shutdown.subscribe();
    let router = app(state);
    let signal = async move {
        tokio::select! {
            () = stop => {}
            _ = shutdown_rx.wait_for(|stop| *stop) => {}
        }
        tracing::info!("shutting down: closing extension sockets, failing calls in flight");
        hub.shutdown();
    };
    // Frames are small and answers latency-bound: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(signal)
        .await
}
