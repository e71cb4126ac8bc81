//! Chrome match patterns (`https://*.example.com/path*`), URL globs (`@exclude`), and
//! whether a hosted script applies to a URL.
//!
//! Runs in: the `any serve` process and the extension's service worker (wasm). The rules
//! are Chrome's (developer.chrome.com "Match patterns"): `<all_urls>`, or
//! `scheme://host/path` where scheme is `*` (http or https), `http`, `https` or `file`;
//! host is `*`, `*.` followed by a domain, or a hostname without `*`, optionally with a
//! port (`:8080`, `:*`; no port means any port); `file` has an empty host; the path
//! starts with `/` and `*` in it matches any characters (query included).

use any_protocol::UserScript;

const SCHEMES: [&str; 4] = ["*", "http", "https", "file"];

/// `Ok` when Chrome accepts `pattern` as a match pattern; `Err` says what is wrong.
pub fn check_match_pattern(pattern: &str) -> Result<(), String> {
    parse_pattern(pattern).map(|_| ())
}

/// A pattern split into its parts.
struct Pattern<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
}

fn parse_pattern(pattern: &str) -> Result<Option<Pattern<'_>>, String> {
    if pattern == "<all_urls>" {
        return Ok(None);
    }
    if pattern.chars().any(char::is_whitespace) {
        return Err("a match pattern contains no spaces".into());
    }
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return Err(
            "not a match pattern: expected scheme://host/path, e.g. https://example.com/*, or <all_urls>"
                .into(),
        );
    };
    if !SCHEMES.contains(&scheme) {
        return Err(format!(
            "the scheme must be http, https, file or * (http and https), got {scheme:?}"
        ));
    }
    let Some(slash) = rest.find('/') else {
        return Err(format!(
            "a match pattern needs a path after the host, e.g. {pattern}/*"
        ));
    };
    let (authority, path) = rest.split_at(slash);
    if scheme == "file" {
        if !authority.is_empty() {
            return Err("a file:// pattern has no host: write file:///path/*".into());
        }
        return Ok(Some(Pattern {
            scheme,
            host: "",
            port: None,
            path,
        }));
    }
    let (host, port) = split_port(authority);
    if host.is_empty() {
        return Err("the host is missing (use * for every host)".into());
    }
    if host != "*" {
        let rest = host.strip_prefix("*.").unwrap_or(host);
        if rest.contains('*') {
            return Err(format!(
                "invalid host wildcard in {host:?}: `*` may only be the whole host or its first label (*.example.com)"
            ));
        }
        if rest.is_empty() || rest.starts_with('.') || rest.ends_with('.') && rest.len() == 1 {
            return Err(format!("invalid host {host:?}"));
        }
    }
    if let Some(port) = port
        && port != "*"
        && (port.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "invalid port {port:?}: a number, or * for any port"
        ));
    }
    Ok(Some(Pattern {
        scheme,
        host,
        port,
        path,
    }))
}

/// `host:port` → (host, Some(port)); an IPv6 host keeps its brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// A URL split as match patterns see it.
struct Url<'a> {
    scheme: String,
    host: String,
    port: Option<&'a str>,
    /// Path and query, without the fragment.
    path: &'a str,
}

fn parse_url(url: &str) -> Option<Url<'_>> {
    let url = url.split('#').next().unwrap_or(url);
    let (scheme, rest) = url.split_once("://")?;
    let slash = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(slash);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_port(authority);
    Some(Url {
        scheme: scheme.to_ascii_lowercase(),
        host: host.to_ascii_lowercase(),
        port,
        path: if path.is_empty() { "/" } else { path },
    })
}

/// Whether `url` matches the match pattern `pattern` (an invalid pattern matches nothing).
pub fn pattern_matches(pattern: &str, url: &str) -> bool {
    let Some(url) = parse_url(url) else {
        return false;
    };
    let web = url.scheme == "http" || url.scheme == "https";
    let pattern = match parse_pattern(pattern) {
        Ok(Some(p)) => p,
        Ok(None) => return web || url.scheme == "file",
        Err(_) => return false,
    };
    let scheme_ok = match pattern.scheme {
        "*" => web,
        scheme => scheme == url.scheme,
    };
    if !scheme_ok {
        return false;
    }
    if pattern.scheme != "file" {
        let host = pattern.host.to_ascii_lowercase();
        let host_ok = if host == "*" {
            true
        } else if let Some(domain) = host.strip_prefix("*.") {
            url.host == domain || url.host.ends_with(&format!(".{domain}"))
        } else {
            url.host == host
        };
        let port_ok = match pattern.port {
            None | Some("*") => true,
            Some(port) => url.port.unwrap_or(default_port(&url.scheme)) == port,
        };
        if !host_ok || !port_ok {
            return false;
        }
    }
    glob_matches(pattern.path, url.path)
}

fn default_port(scheme: &str) -> &'static str {
    if scheme == "https" { "443" } else { "80" }
}

/// `*` matches any characters, `?` one character; the whole of `text` must match.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((sg, st)) = star {
            g = sg + 1;
            t = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

/// Whether Chrome runs `script` on `url`: some `@match` matches, no `@exclude-match`
/// matches and no `@exclude` glob matches (enabled or not is the caller's question).
pub fn runs_on(script: &UserScript, url: &str) -> bool {
    script.matches.iter().any(|p| pattern_matches(p, url))
        && !script
            .exclude_matches
            .iter()
            .any(|p| pattern_matches(p, url))
        && !script.exclude_globs.iter().any(|g| glob_matches(g, url))
}
