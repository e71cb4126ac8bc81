//! The CLI's HTTP client for a running `any serve`, and the autostart that launches
//! one when nothing answers. Runs in the short-lived `any call|status|stop` process.
//!
//! Always talks to `127.0.0.1:<port>` and never through a proxy (`.no_proxy()`):
//! system proxy settings must not capture loopback traffic. Every request carries the
//! user's token (`Authorization: Bearer`, from `any_server::token`); the client creates
//! the token file if no server has yet, so a server it then starts uses the same one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use any_protocol::api::{
    AddScript, CallFailure, CallRequest, CallSuccess, Health, RunRequest, ScriptChange, ScriptList,
    Status,
};
use any_server::api::ShutdownAck;
use anyhow::{Context, bail};

/// How long `any call` waits for a server it started to answer `/v1/health`.
pub const AUTOSTART_WAIT: Duration = Duration::from_secs(10);

/// How long one health probe may take before the port counts as silent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Client {
    http: reqwest::Client,
    base: String,
    port: u16,
}

/// What the server answered to `POST /v1/call`.
pub enum CallAnswer {
    Success(CallSuccess),
    Failure { status: u16, failure: CallFailure },
}

impl Client {
    pub fn new(port: u16) -> anyhow::Result<Self> {
        let token_path = any_server::token::path()?;
        let token = any_server::token::load_or_create(&token_path)
            .context("the any client API needs the user's token")?;
        let mut bearer = reqwest::header::HeaderValue::try_from(format!("Bearer {token}"))
            .context("the token is not a valid header value")?;
        bearer.set_sensitive(true);
        let headers =
            reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, bearer)]);
        let http = reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers)
            .connect_timeout(PROBE_TIMEOUT)
            .build()
            .context("could not create the HTTP client")?;
        Ok(Client {
            http,
            base: format!("http://127.0.0.1:{port}"),
            port,
        })
    }

    /// `GET /v1/health`; `Ok(None)` when nothing listens on the port.
    pub async fn health(&self) -> anyhow::Result<Option<Health>> {
        let url = format!("{}/v1/health", self.base);
        let response = match self.http.get(&url).timeout(PROBE_TIMEOUT).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() || e.is_timeout() => return Ok(None),
            Err(e) => return Err(e).context(format!("GET {url}")),
        };
        if !response.status().is_success() {
            bail!(
                "something other than an any server answers on port {} (GET /v1/health gave {}); \
                 pick another port with --port",
                self.port,
                response.status()
            );
        }
        let health = response.json::<Health>().await.with_context(|| {
            format!("something other than an any server answers on port {}; pick another port with --port", self.port)
        })?;
        Ok(Some(health))
    }

    /// Makes sure a server answers on the port, starting one (detached) if nothing does.
    pub async fn ensure_server(&self) -> anyhow::Result<()> {
        if self.health().await?.is_some() {
            return Ok(());
        }
        let log_path = server_log_path(self.port)?;
        let mut child = spawn_server(self.port, &log_path)?;
        let started = Instant::now();
        let mut exited = None;
        while started.elapsed() < AUTOSTART_WAIT {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.health().await?.is_some() {
                return Ok(());
            }
            if exited.is_none() {
                exited = child.try_wait().ok().flatten();
            }
        }
        let how = match exited {
            Some(status) => format!("it exited ({status})"),
            None => format!("it did not answer within {} s", AUTOSTART_WAIT.as_secs()),
        };
        bail!(
            "no any server was running on port {port}, so one was started (`any serve --port {port}`, \
             pid {pid}), but {how}; see its log: {log}",
            port = self.port,
            pid = child.id(),
            log = log_path.display()
        )
    }

    /// `POST /v1/call`. The server enforces the call's deadline; the client only guards
    /// against a server that never answers at all.
    pub async fn call(
        &self,
        request: &CallRequest,
        patience: Duration,
    ) -> anyhow::Result<CallAnswer> {
        self.post_call("/v1/call", request, patience).await
    }

    /// `POST /v1/run` (an ad-hoc script), answered like a call.
    pub async fn run(
        &self,
        request: &RunRequest,
        patience: Duration,
    ) -> anyhow::Result<CallAnswer> {
        self.post_call("/v1/run", request, patience).await
    }

    async fn post_call(
        &self,
        path: &str,
        request: &impl serde::Serialize,
        patience: Duration,
    ) -> anyhow::Result<CallAnswer> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .post(&url)
            .json(request)
            .timeout(patience)
            .send()
            .await
            .map_err(|e| self.call_lost(e, &url, patience))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.call_lost(e, &url, patience))?;
        if status.is_success() {
            let success = serde_json::from_slice(&body)
                .context("the server's answer is not a call result")?;
            Ok(CallAnswer::Success(success))
        } else {
            let failure = serde_json::from_slice(&body).with_context(|| {
                format!("the server answered {status} with a body that is not an error object")
            })?;
            Ok(CallAnswer::Failure {
                status: status.as_u16(),
                failure,
            })
        }
    }

    /// The error of a call whose HTTP exchange failed, saying what it means for the
    /// call: no server, no answer in time, or — the server was killed or crashed
    /// mid-call — a connection closed before the answer, so the outcome is unknown.
    fn call_lost(&self, e: reqwest::Error, url: &str, patience: Duration) -> anyhow::Error {
        let what = if e.is_connect() {
            format!(
                "could not connect to the any server at 127.0.0.1:{}",
                self.port
            )
        } else if e.is_timeout() {
            format!(
                "the any server at 127.0.0.1:{} did not answer within {} s",
                self.port,
                patience.as_secs()
            )
        } else {
            let log = server_log_path(self.port)
                .map(|p| format!(" (if `any call` started it, its log is {})", p.display()))
                .unwrap_or_default();
            format!(
                "the any server at 127.0.0.1:{} closed the connection before answering: it \
                 stopped or crashed while the call ran, so whether the method ran is unknown{log}",
                self.port
            )
        };
        anyhow::Error::new(e)
            .context(format!("POST {url}"))
            .context(what)
    }

    /// `GET /v1/scripts`: the hosted userscripts, or the server's error.
    pub async fn scripts_get(&self) -> anyhow::Result<Result<ScriptList, CallFailure>> {
        self.json_request(reqwest::Method::GET, "/v1/scripts", None::<&()>)
            .await
    }

    /// `POST /v1/scripts`: adds (or replaces) a userscript.
    pub async fn scripts_add(
        &self,
        body: &AddScript,
    ) -> anyhow::Result<Result<ScriptChange, CallFailure>> {
        self.json_request(reqwest::Method::POST, "/v1/scripts", Some(body))
            .await
    }

    /// `DELETE /v1/scripts/{name}` (`method` DELETE, `action` "") or
    /// `POST /v1/scripts/{name}/enable|disable` (`action` "/enable", "/disable").
    pub async fn scripts_change(
        &self,
        method: &str,
        name: &str,
        action: &str,
    ) -> anyhow::Result<Result<ScriptChange, CallFailure>> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("HTTP method")?;
        let path = format!("/v1/scripts/{}{action}", percent_encode(name));
        self.json_request(method, &path, None::<&()>).await
    }

    /// One request whose success (2xx) is a `T` and whose failure is a `CallFailure`.
    async fn json_request<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> anyhow::Result<Result<T, CallFailure>> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .timeout(PROBE_TIMEOUT * 5);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {method} {url}"))?;
        if status.is_success() {
            Ok(Ok(serde_json::from_slice(&bytes).with_context(|| {
                format!("the server's answer to {method} {path} is not what this any expects")
            })?))
        } else {
            Ok(Err(serde_json::from_slice(&bytes).with_context(|| {
                format!("the server answered {status} with a body that is not an error object")
            })?))
        }
    }

    /// `GET /v1/status`; `Ok(None)` when nothing listens on the port.
    pub async fn status(&self) -> anyhow::Result<Option<Status>> {
        let url = format!("{}/v1/status", self.base);
        let response = match self.http.get(&url).timeout(PROBE_TIMEOUT).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(e).context(format!("GET {url}")),
        };
        let response = response
            .error_for_status()
            .with_context(|| format!("GET {url}"))?;
        Ok(Some(response.json().await.context(
            "the server's status is not what this any expects",
        )?))
    }

    /// `GET /v1/trace`: the live frame stream, to be read with `Response::chunk`;
    /// `Ok(None)` when nothing listens on the port.
    pub async fn trace(&self) -> anyhow::Result<Option<reqwest::Response>> {
        let url = format!("{}/v1/trace", self.base);
        let response = match self.http.get(&url).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(e).context(format!("GET {url}")),
        };
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<CallFailure>(&body)
                .map(|f| f.error.message)
                .unwrap_or(body);
            bail!("the server refused the trace ({status}): {message}");
        }
        Ok(Some(response))
    }

    /// `POST /v1/shutdown`; `Ok(None)` when nothing listens on the port.
    pub async fn shutdown(&self) -> anyhow::Result<Option<ShutdownAck>> {
        let url = format!("{}/v1/shutdown", self.base);
        let response = match self.http.post(&url).timeout(PROBE_TIMEOUT).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(e).context(format!("POST {url}")),
        };
        let response = response
            .error_for_status()
            .with_context(|| format!("POST {url}"))?;
        Ok(Some(response.json().await.context(
            "the server's answer to shutdown is not what this any expects",
        )?))
    }
}

/// `~/.local/share/any` (or `$XDG_DATA_HOME/any`): where `any` keeps its logs and token.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    Ok(any_server::token::data_dir()?)
}

/// The log of a server started by the CLI on `port`.
pub fn server_log_path(port: u16) -> anyhow::Result<PathBuf> {
    Ok(data_dir()?.join(format!("server-{port}.log")))
}

/// Starts `any serve --port <port>` detached: its own process group (a Ctrl-C in the
/// terminal does not reach it), stdin from /dev/null, output appended to `log_path`.
/// It outlives this process.
fn spawn_server(port: u16, log_path: &Path) -> anyhow::Result<std::process::Child> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let mut log: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("could not open the server log {}", log_path.display()))?;
    let _ = writeln!(
        log,
        "--- `any call` is starting `any serve --port {port}` ---"
    );
    let log_err = log
        .try_clone()
        .context("could not duplicate the log file handle")?;
    let exe =
        std::env::current_exe().context("cannot find the any executable to start the server")?;
    let child = Command::new(&exe)
        .args(["serve", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start {} serve", exe.display()))?;
    eprintln!(
        "any: started a server on 127.0.0.1:{port} (pid {}); log: {}",
        child.id(),
        log_path.display()
    );
    Ok(child)
}

/// `name` as one URL path segment: unreserved characters as they are, every other byte
/// as `%XX`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
