//! The OpenAPI 3 description of the client API, served at `GET /v1/openapi.json`.
//!
//! Written by hand next to the routes; a test checks that its paths and methods are
//! exactly those of [`crate::routes`], in both directions. The rules of who may connect
//! (`access.rs`) are added to every operation in one place, [`add_access_rules`].

use any_protocol::ErrorCode;
use serde_json::{Value, json};

/// What `page` must look like (checked in `api::validate`): an absolute http(s) or
/// file URL, the scheme in any case.
const PAGE_PATTERN: &str = "^([hH][tT][tT][pP][sS]?|[fF][iI][lL][eE])://.";

/// The OpenAPI 3.0 document.
pub fn document() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let failure = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallFailure"}}}
        })
    };
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "any",
            "version": crate::VERSION,
            "description": "Automate the user's real browser: a call names a page and a method \
                that a userscript defined on globalThis.__any__; the browser extension runs it \
                in a tab and the result comes back. Every failure answers with CallFailure and \
                the HTTP status of its code. Requests that carry a web page's Origin \
                header are refused with 403."
        },
        "servers": [{"url": "http://127.0.0.1:8765"}],
        "paths": {
            "/v1/health": {"get": {
                "summary": "Is the server up, and how many extensions are connected",
                "operationId": "health",
                "responses": {"200": {"description": "The server is up",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}
            }},
            "/v1/status": {"get": {
                "summary": "Connected extensions and calls in flight",
                "operationId": "status",
                "responses": {"200": {"description": "The server's state",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}}
            }},
            "/v1/call": {"post": {
                "summary": "Run globalThis.__any__[method](params) in a tab at page",
                "description": "Waits up to the server's --connect-wait (default 5 s) for an extension \
                    (with the requested label, if any), then for the answer up to timeout_ms. \
                    Without a browser label the call goes to the most recently connected extension.",
                "operationId": "call",
                "requestBody": {"required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallRequest"}}}},
                "responses": {
                    "200": {"description": "The method's result",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallSuccess"}}}},
                    "400": failure("bad_request: the body is malformed or invalid"),
                    "404": failure("method_not_found: globalThis.__any__[method] never appeared"),
                    "413": failure("too_large: the body or result exceeds 64 MiB"),
                    "422": failure("page_error (the method threw) or not_serializable"),
                    "502": failure("navigation_failed, tab_closed, extension_disconnected or protocol_error"),
                    "503": failure("no_extension: no (matching) extension connected within the wait"),
                    "504": failure("timeout: the message says which stage the call reached")
                }
            }},
            "/v1/run": {"post": {
                "summary": "Run an ad-hoc script (the body of an async function) in a tab at page",
                "description": "Refused with 403 scripts_disabled unless the server runs with \
                    --allow-scripts. Runs in the page's MAIN world through chrome.userScripts.execute \
                    (works on strict-CSP pages; the browser's \"Allow User Scripts\" switch for the any \
                    extension must be on, else scripts_disabled says so). The return value comes \
                    back like a method's: same answer, error codes and encoding rules.",
                "operationId": "run",
                "requestBody": {"required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}}},
                "responses": {
                    "200": {"description": "The script's result",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallSuccess"}}}},
                    "400": failure("bad_request: the body is malformed or invalid"),
                    "403": failure("scripts_disabled: no --allow-scripts, or \"Allow User Scripts\" is off in the browser"),
                    "422": failure("page_error (the script threw, or is not valid JavaScript) or not_serializable"),
                    "502": failure("navigation_failed, tab_closed, extension_disconnected or protocol_error"),
                    "503": failure("no_extension"),
                    "504": failure("timeout")
                }
            }},
            "/v1/scripts": {
                "get": {
                    "summary": "The userscripts hosted by the server",
                    "operationId": "listScripts",
                    "responses": {"200": {"description": "Every hosted script, by name, and what keeps them from running",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScriptList"}}}}}
                },
                "post": {
                    "summary": "Add a userscript (or replace the one with the same @name)",
                    "description": "The ==UserScript== header is checked (@name, @match, @exclude-match, \
                        @exclude, @run-at, @version, @description); the script is stored in the \
                        server's scripts directory and registered with chrome.userScripts in every \
                        connected browser, in the page's MAIN world.",
                    "operationId": "addScript",
                    "requestBody": {"required": true,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AddScript"}}}},
                    "responses": {
                        "200": {"description": "The script as stored",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScriptChange"}}}},
                        "400": failure("bad_request: not a userscript any can host (the message names the line)")
                    }
                }
            },
            "/v1/scripts/{name}": {"delete": {
                "summary": "Remove a hosted userscript",
                "operationId": "removeScript",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The removed script",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScriptChange"}}}},
                    "400": failure("bad_request: no script has this name")
                }
            }},
            "/v1/scripts/{name}/enable": {"post": {
                "summary": "Enable a hosted userscript",
                "operationId": "enableScript",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The script",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScriptChange"}}}},
                    "400": failure("bad_request: no script has this name")
                }
            }},
            "/v1/scripts/{name}/disable": {"post": {
                "summary": "Disable a hosted userscript (kept, not registered in browsers)",
                "operationId": "disableScript",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The script",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScriptChange"}}}},
                    "400": failure("bad_request: no script has this name")
                }
            }},
            "/v1/shutdown": {"post": {
                "summary": "Stop the server gracefully (used by `any stop`)",
                "description": "Extension sockets are closed and calls in flight fail.",
                "operationId": "shutdown",
                "responses": {"200": {"description": "The server is stopping",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ShutdownAck"}}}}}
            }},
            "/v1/openapi.json": {"get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3 document",
                    "content": {"application/json": {"schema": {"type": "object"}}}}}
            }},
            "/v1/extension": {"get": {
                "summary": "The browser extension's WebSocket (not for clients)",
                "description": "Upgrade to a WebSocket speaking the any extension protocol v1: \
                    JSON text frames {\"v\":1,\"type\":...}; hello → welcome|reject; call/cancel/ping \
                    from the server; progress/result/error/pong from the extension.",
                "operationId": "extensionSocket",
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                    "400": failure("not a WebSocket upgrade request"),
                    "403": failure("the Origin is a web page, not a browser extension")
                }
            }},
            "/v1/trace": {"get": {
                "summary": "Watch every frame between the server and its extensions, live (used by `any trace`)",
                "description": "A stream of JSON Lines that lasts until the client closes it or the \
                    server stops. Frame lines are {t, conn, dir, frame}: t in Unix seconds, conn the \
                    connection (ext-N), dir as the extension sees it (out: sent by the extension, \
                    in: sent to it), frame the frame's JSON as sent. Other lines have an event: \
                    tracing (the first line, with the extensions connected then), closed (a socket \
                    ended; detail says why), missed (count events this watcher lost by reading too \
                    slowly; the server never waits for a watcher). Nothing is recorded while nobody \
                    watches.",
                "operationId": "trace",
                "responses": {"200": {"description": "JSON Lines, one per frame or event",
                    "content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/TraceLine"}}}}}
            }}
        },
        "components": {"schemas": {
            "CallRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["page", "method"],
                "properties": {
                    "page": {"type": "string", "description": "Absolute http(s):// or file:// URL",
                        "pattern": PAGE_PATTERN},
                    "method": {"type": "string", "description": "Function name on globalThis.__any__",
                        "minLength": 1, "pattern": "^\\S+$"},
                    "params": {"description": "Any JSON; {} when absent or null"},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": crate::api::MAX_TIMEOUT_MS,
                        "default": any_protocol::api::DEFAULT_TIMEOUT_MS},
                    "browser": {"type": "string", "description": "Route to the extension with this label"},
                    "tab": {"type": "string", "enum": ["reuse", "new"], "default": "reuse"}
                }
            },
            "CallSuccess": {
                "type": "object",
                "required": ["v", "id", "result"],
                "properties": {"v": {"type": "integer", "enum": [1]}, "id": {"type": "string"}, "result": {}}
            },
            "CallFailure": {
                "type": "object",
                "required": ["v", "error"],
                "properties": {
                    "v": {"type": "integer", "enum": [1]},
                    "id": {"type": "string", "description": "Absent when the request never became a call"},
                    "error": {"$ref": "#/components/schemas/ErrorBody"}
                }
            },
            "ErrorBody": {
                "type": "object",
                "required": ["code", "name", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "name": {"type": "string", "description": "The page's error name for page_error"},
                    "message": {"type": "string"},
                    "stack": {"type": "string"},
                    "stage": {"$ref": "#/components/schemas/Stage"}
                }
            },
            "Stage": {"type": "string", "enum": ["queued", "dispatched", "tab_opened", "navigating",
                "page_loaded", "waiting_for_methods", "method_found", "method_called"]},
            "Health": {
                "type": "object",
                "required": ["ok", "version", "extensions"],
                "properties": {"ok": {"type": "boolean"}, "version": {"type": "string"},
                    "extensions": {"type": "integer"}}
            },
            "Status": {
                "type": "object",
                "required": ["version", "listen", "pid", "extensions", "calls", "recent"],
                "properties": {
                    "version": {"type": "string"},
                    "listen": {"type": "string"},
                    "pid": {"type": "integer"},
                    "extensions": {"type": "array", "items": {
                        "type": "object",
                        "required": ["conn", "label", "browser", "extension_version", "connected_since", "calls_in_flight"],
                        "properties": {
                            "conn": {"type": "string"}, "label": {"type": "string"},
                            "browser": {"type": "object", "properties": {
                                "name": {"type": "string"}, "version": {"type": "string"}}},
                            "extension_version": {"type": "string"},
                            "connected_since": {"type": "number", "description": "Unix seconds"},
                            "calls_in_flight": {"type": "integer"}
                        }
                    }},
                    "calls": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "page", "method", "stage", "age_s"],
                        "properties": {
                            "id": {"type": "string"}, "page": {"type": "string"}, "method": {"type": "string"},
                            "stage": {"$ref": "#/components/schemas/Stage"}, "conn": {"type": "string"},
                            "age_s": {"type": "number"}
                        }
                    }},
                    "recent": {"type": "array", "description": "Finished calls, newest first", "items": {
                        "type": "object",
                        "required": ["id", "page", "method", "ended_at", "duration_s"],
                        "properties": {
                            "id": {"type": "string"}, "page": {"type": "string"}, "method": {"type": "string"},
                            "conn": {"type": "string"},
                            "ended_at": {"type": "number", "description": "Unix seconds"},
                            "duration_s": {"type": "number"},
                            "error": {"$ref": "#/components/schemas/ErrorBody"},
                            "dropped_answers": {"type": "integer",
                                "description": "Late or duplicate answers that arrived after the call ended"}
                        }
                    }}
                }
            },
            "TraceLine": {
                "type": "object",
                "required": ["t"],
                "properties": {
                    "t": {"type": "number", "description": "Unix seconds"},
                    "conn": {"type": "string", "description": "ext-N, or refused for a socket refused at hello"},
                    "dir": {"type": "string", "enum": ["in", "out"],
                        "description": "As the extension sees it: out = sent by the extension"},
                    "frame": {"description": "The frame's JSON, or a string holding a frame that is not JSON"},
                    "event": {"type": "string", "enum": ["tracing", "closed", "missed"]},
                    "extensions": {"type": "array", "description": "tracing: the extensions connected when the watch began",
                        "items": {"type": "object"}},
                    "detail": {"type": "string", "description": "closed: why the socket ended"},
                    "count": {"type": "integer", "description": "missed: how many events were lost"}
                }
            },
            "RunRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["page", "script"],
                "properties": {
                    "page": {"type": "string", "description": "Absolute http(s):// or file:// URL"},
                    "script": {"type": "string", "description": "The body of an async function; its return value is the result"},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": crate::api::MAX_TIMEOUT_MS,
                        "default": any_protocol::api::DEFAULT_TIMEOUT_MS},
                    "browser": {"type": "string", "description": "Route to the extension with this label"},
                    "tab": {"type": "string", "enum": ["reuse", "new"], "default": "reuse"}
                }
            },
            "AddScript": {
                "type": "object",
                "additionalProperties": false,
                "required": ["source"],
                "properties": {"source": {"type": "string", "description": "The whole .user.js file"}}
            },
            "ScriptInfo": {
                "type": "object",
                "required": ["name", "matches", "run_at", "enabled"],
                "properties": {
                    "name": {"type": "string"}, "version": {"type": "string"},
                    "description": {"type": "string"},
                    "matches": {"type": "array", "items": {"type": "string"}},
                    "exclude_matches": {"type": "array", "items": {"type": "string"}},
                    "exclude_globs": {"type": "array", "items": {"type": "string"}},
                    "run_at": {"type": "string", "enum": ["document_start", "document_end", "document_idle"]},
                    "enabled": {"type": "boolean"},
                    "file": {"type": "string", "description": "Where the server keeps it"}
                }
            },
            "ScriptList": {
                "type": "object",
                "required": ["scripts"],
                "properties": {
                    "scripts": {"type": "array", "items": {"$ref": "#/components/schemas/ScriptInfo"}},
                    "warnings": {"type": "array", "items": {"type": "string"}}
                }
            },
            "ScriptChange": {
                "type": "object",
                "required": ["script"],
                "properties": {
                    "script": {"$ref": "#/components/schemas/ScriptInfo"},
                    "warnings": {"type": "array", "items": {"type": "string"}}
                }
            },
            "ShutdownAck": {
                "type": "object",
                "required": ["ok", "pid"],
                "properties": {"ok": {"type": "boolean"}, "pid": {"type": "integer"}}
            }
        }}
    });
    add_access_rules(&mut doc);
    doc
}

/// Adds to every operation what `access.rs` enforces: the bearer token (except on the
/// open paths), 403 `forbidden` for a foreign Host or Origin, 401 `unauthorized`, and
/// 429 `too_many_calls` where calls start. Also the `rejected` record of `Status`.
fn add_access_rules(doc: &mut Value) {
    let failure = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallFailure"}}}
        })
    };
    doc["components"]["securitySchemes"] = json!({"token": {
        "type": "http",
        "scheme": "bearer",
        "description": "The user's token: the file ~/.local/share/any/token ($XDG_DATA_HOME/any/token), \
            created by `any serve`, printed by `any token`."
    }});
    doc["security"] = json!([{"token": []}]);
    let description = doc["info"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    doc["info"]["description"] = Value::from(format!(
        "{description} Every request but GET /v1/health, GET /v1/openapi.json and the \
         extension socket needs `Authorization: Bearer <token>` (401 unauthorized otherwise); \
         a Host other than 127.0.0.1, localhost or [::1] with the server's port, or an Origin \
         that is not allowed, is refused with 403 forbidden."
    ));
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let open = crate::access::OPEN_PATHS.contains(&path.as_str());
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for (method, operation) in operations.iter_mut() {
            let responses = &mut operation["responses"];
            let forbidden = "forbidden: the Host is not this server's loopback address, or the \
                Origin is not allowed (web pages are refused)";
            let text = match responses["403"]["description"].as_str() {
                Some(other) => format!("{forbidden}; or {other}"),
                None => forbidden.to_owned(),
            };
            responses["403"] = failure(&text);
            if !open {
                responses["401"] = failure(
                    "unauthorized: no `Authorization: Bearer <token>`, or not the user's token",
                );
            }
            if method == "post" && (path == "/v1/call" || path == "/v1/run") {
                responses["429"] = failure(
                    "too_many_calls: the server already runs --max-calls calls; retry later",
                );
            }
            if open {
                operation["security"] = json!([]);
            }
        }
    }
    if let Some(required) = doc["components"]["schemas"]["Status"]["required"].as_array_mut() {
        required.push(Value::from("rejected"));
    }
    doc["components"]["schemas"]["Status"]["properties"]["rejected"] = json!({
        "type": "array",
        "description": "Refused connections and requests, newest first",
        "items": {
            "type": "object",
            "required": ["at", "request", "code", "reason"],
            "properties": {
                "at": {"type": "number", "description": "Unix seconds"},
                "request": {"type": "string", "description": "e.g. GET /v1/extension"},
                "origin": {"type": "string"},
                "code": {"type": "string"},
                "reason": {"type": "string"}
            }
        }
    });
}
