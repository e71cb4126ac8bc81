//! Shared test harness: a real `any` server on `127.0.0.1:0` (in this process), an
//! HTTP client that bypasses proxies, and helpers to connect fake extensions.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use any_server::Config;
use fake_extension::{FakeExtension, Options};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Server {
    pub port: u16,
    pub base: String,
    /// Sends the server's token on every request.
    pub http: reqwest::Client,
    /// The server's token (`Config::token`).
    pub token: String,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// A config with short waits, so that failing paths are quick to test.
pub fn quick() -> Config {
    Config {
        connect_wait: Duration::from_millis(500),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let (stop, stopped) = oneshot::channel::<()>();
    let token = config.token.clone();
    let task = tokio::spawn(any_server::serve(listener, config, async move {
        let _ = stopped.await;
    }));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .expect("client");
    Server {
        port,
        base: format!("http://127.0.0.1:{port}"),
        http,
        token,
        stop: Some(stop),
        task,
    }
}

impl Server {
    pub async fn fake(&self) -> FakeExtension {
        FakeExtension::connect(Options::port(self.port))
            .await
            .expect("fake extension connects")
    }

    pub async fn fake_labelled(&self, label: &str) -> FakeExtension {
        FakeExtension::connect(Options::port(self.port).label(label))
            .await
            .expect("fake extension connects")
    }

    /// The handshake request of the extension socket, with the extension's `Origin`, for
    /// tests that speak the protocol by hand.
    pub fn ws_request(&self) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://127.0.0.1:{}/v1/extension", self.port)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "origin",
            any_protocol::EXTENSION_ORIGIN.parse().expect("header"),
        );
        request
    }

    /// `POST /v1/call` with `body`; returns the status and the JSON answer.
    pub async fn call(&self, body: Value) -> (u16, Value) {
        self.spawn_call(body).await.expect("the call's task")
    }

    /// [`Server::call`] on a task of its own, for a call that stays pending while the
    /// test acts on the extension side.
    pub fn spawn_call(&self, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
        let (http, url) = (self.http.clone(), format!("{}/v1/call", self.base));
        tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("POST /v1/call");
            let status = response.status().as_u16();
            (status, response.json().await.expect("a JSON answer"))
        })
    }

    /// A call of `method` on a test page, with `params`.
    pub async fn call_method(&self, method: &str, params: Value) -> (u16, Value) {
        self.call(serde_json::json!({"page": "https://example.test/", "method": method, "params": params})).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    pub async fn health_extensions(&self) -> u64 {
        self.get("/v1/health").await.1["extensions"]
            .as_u64()
            .expect("extensions count")
    }

    /// Waits until the server counts `n` extensions.
    pub async fn wait_extensions(&self, n: u64) {
        wait_until("the server to count the extensions", || async {
            self.health_extensions().await == n
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

/// Polls `check` every 10 ms for up to 5 s; panics with `what` if it never holds.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The `error` object of a failure answer.
pub fn error(answer: &Value) -> &Value {
    &answer["error"]
}
