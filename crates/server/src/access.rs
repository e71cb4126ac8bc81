//! Who may connect: the middleware in front of every route of `any serve`.
//!
//! A loopback port that drives the user's logged-in browser is a target: every web page
//! the user visits can open WebSockets to `127.0.0.1` and send "simple" POSTs there, and
//! other local users can reach the port too. So, in this order, for every request:
//!
//! 1. **Host** must be a loopback name (`127.0.0.1`, `localhost`, `[::1]`, or the
//!    address the server is bound to) with the server's own port. Anything else is a
//!    page that reached us through DNS rebinding (`evil.example` resolving to
//!    127.0.0.1): 403 `forbidden`.
//! 2. **Origin**, when present, must equal one of the allowed origins exactly (the any
//!    extension's `chrome-extension://<id>`, plus each `--allow-origin`). Browsers send
//!    it on every WebSocket and every cross-origin POST; programs (curl, Python, `any`)
//!    send none. No prefix or suffix matching: `chrome-extension://<id>.evil` and
//!    `http://127.0.0.1.evil.com` are different origins. 403 `forbidden`.
//! 3. The **extension socket** (`/v1/extension`) additionally requires an allowed
//!    Origin: only the extension may open it.
//! 4. Everything else except [`OPEN_PATHS`] needs `Authorization: Bearer <token>`
//!    with the user's token ([`crate::token`]): 401 `unauthorized`.
//!
//! Every refusal is logged and kept in the last entries of `/v1/status` `rejected`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{AppState, Error};

/// The paths served without the token: `GET /v1/health` (so that autostart can tell a
/// running any server from a free port; it says only `ok`, the version and how many
/// extensions are connected), the OpenAPI document (public anyway), and the extension's
/// socket (the extension cannot know the token; it is pinned by its Origin instead).
pub const OPEN_PATHS: [&str; 3] = ["/v1/health", "/v1/openapi.json", EXTENSION_PATH];

/// The extension's WebSocket.
pub const EXTENSION_PATH: &str = "/v1/extension";

/// Middleware: refuses requests from the wrong host, origin or without the token.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state, request.headers(), request.uri()) {
        Ok(()) => next.run(request).await,
        Err(error) => {
            let what = format!("{} {}", request.method(), request.uri().path());
            let origin = request
                .headers()
                .get(header::ORIGIN)
                .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
            tracing::warn!(
                "refused {what}{}: {error}",
                origin
                    .as_deref()
                    .map(|o| format!(" (Origin {o})"))
                    .unwrap_or_default()
            );
            state
                .hub
                .rejected(what, origin, error.code(), error.to_string());
            error.into_response()
        }
    }
}

/// The rules of the module docs, for one request.
pub fn check(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), Error> {
    let port = state.listen.port();
    let host = headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if host_ok(&host, state) => {}
        Some(host) => {
            return Err(Error::Forbidden(format!(
                "the Host {host:?} is not this server's address: the any server answers only \
                 to 127.0.0.1:{port}, localhost:{port} or [::1]:{port} (a web page reaching it \
                 under another name is refused; this protects against DNS rebinding)"
            )));
        }
        None => {
            return Err(Error::Forbidden(format!(
                "the request has no Host header: send `Host: 127.0.0.1:{port}`"
            )));
        }
    }

    let path = uri.path();
    let allowed = &state.config.allowed_origins;
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("");
            if !allowed.iter().any(|a| a == origin) {
                let origin = String::from_utf8_lossy(headers[header::ORIGIN].as_bytes());
                return Err(Error::Forbidden(if path == EXTENSION_PATH {
                    format!(
                        "only the any extension ({}) may open the extension socket, not {origin}; \
                         another build of the extension can be allowed with `any serve --allow-origin`",
                        any_protocol::EXTENSION_ORIGIN
                    )
                } else {
                    format!(
                        "the any server does not accept requests from web pages (Origin: {origin}); \
                         call it from a program, or allow the origin with `any serve --allow-origin`"
                    )
                }));
            }
        }
        None if path == EXTENSION_PATH => {
            return Err(Error::Forbidden(format!(
                "only the any extension may open the extension socket, and this request has no \
                 Origin header (the extension's is {})",
                any_protocol::EXTENSION_ORIGIN
            )));
        }
        None => {}
    }

    if OPEN_PATHS.contains(&path) {
        return Ok(());
    }
    let hint = match crate::token::path() {
        Ok(file) => format!("{} (`any token` prints it)", file.display()),
        Err(_) => "the any data directory (`any token` prints it)".to_owned(),
    };
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Err(Error::Unauthorized(format!(
            "this request has no `Authorization: Bearer <token>` header: the any client API \
             needs the token in {hint}"
        )));
    };
    let given = authorization
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| {
            Error::Unauthorized(format!(
                "the Authorization header must be `Bearer <token>`, with the token in {hint}"
            ))
        })?;
    if !crate::token::same(given, &state.config.token) {
        return Err(Error::Unauthorized(format!(
            "the token in `Authorization: Bearer` is wrong: use the one in {hint}"
        )));
    }
    Ok(())
}

/// Whether `host` (a Host header, `name[:port]`) names this server on loopback.
fn host_ok(host: &str, state: &AppState) -> bool {
    let port = state.listen.port();
    let (name, given_port) = match host.rsplit_once(':') {
        // `[::1]:8765` or `127.0.0.1:8765`; a bare `[::1]` has its colons inside brackets.
        Some((name, p)) if !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (host, None),
    };
    // Without a port, the client means the scheme's default (80).
    let port_ok = given_port.unwrap_or(80) == port;
    let name = name.to_ascii_lowercase();
    let bound = match state.listen.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    port_ok && (["127.0.0.1", "localhost", "[::1]"].contains(&name.as_str()) || name == bound)
}

/// Checks an `--allow-origin` value: `scheme://host[:port]`, nothing else, lowercase
/// (as browsers send it). Returns the origin to compare with.
pub fn parse_origin(origin: &str) -> Result<String, String> {
    let lower = origin.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(format!(
            "--allow-origin {origin:?} is not an origin: write scheme://host[:port], e.g. \
             chrome-extension://abcdefghijklmnopabcdefghijklmnop"
        ));
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let rest_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !scheme_ok || !rest_ok {
        return Err(format!(
            "--allow-origin {origin:?} is not an origin: write scheme://host[:port] exactly as \
             the browser sends it, without a path or a trailing slash"
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_bare_scheme_host_port() {
        assert_eq!(
            parse_origin("chrome-extension://ABCdef").as_deref(),
            Ok("chrome-extension://abcdef")
        );
        assert!(parse_origin("http://127.0.0.1:3000").is_ok());
        for bad in [
            "*",
            "null",
            "http://x/",
            "http://x/path",
            "chrome-extension://",
            "://x",
            "http://a b",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
