//! The per-user token: a random secret in the user's data directory that every client
//! of the API sends as `Authorization: Bearer <token>`. It separates the user's own
//! programs from other local users' (who can reach a loopback port too) and from web
//! pages (which cannot read files). Used by `any serve` (creates it), the CLI clients
//! and `any token` (read it); the Python client reads the same file.
//!
//! File: `$XDG_DATA_HOME/any/token` or `~/.local/share/any/token`, 64 hex digits (256
//! random bits), mode 0600 in a directory created 0700. Created atomically (written to a
//! private temporary file, then hard-linked into place, so no reader ever sees half a
//! token and two servers starting at once end up with the same one) and reused across
//! restarts. A file that other users can read, or that does not hold a token, is
//! refused with a message saying what to do.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many random bytes a token has (written as twice as many hex digits).
const TOKEN_BYTES: usize = 32;

/// `$XDG_DATA_HOME/any` when that is an absolute path, else `~/.local/share/any`: where
/// `any` keeps its token and the logs of servers it started.
pub fn data_dir() -> io::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("any"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "cannot find the data directory: HOME is not set",
        )
    })?;
    Ok(PathBuf::from(home).join(".local/share/any"))
}

/// The token file of this user.
pub fn path() -> io::Result<PathBuf> {
    Ok(data_dir()?.join("token"))
}

/// A fresh random token: 64 lowercase hex digits.
pub fn generate() -> io::Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        io::Error::other(format!(
            "the system gave no random bytes for the token: {e}"
        ))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads the token at `path`. Fails (with a message that says what to do) when the file
/// is missing, readable by other users, or does not hold a token.
pub fn read(path: &Path) -> io::Result<String> {
    let meta = fs::metadata(path).map_err(|e| annotate(e, path, "could not read"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the any token {} can be read by other users (mode {mode:03o}): \
                 `chmod 600 {}`, or delete it so that the server makes a new one",
                path.display(),
                path.display()
            ),
        ));
    }
    let text = fs::read_to_string(path).map_err(|e| annotate(e, path, "could not read"))?;
    let token = text.trim();
    if !is_token(token) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not hold an any token (64 hex digits): delete it, and the server \
                 makes a new one when it starts",
                path.display()
            ),
        ));
    }
    Ok(token.to_owned())
}

/// The token at `path`, created first if there is none.
pub fn load_or_create(path: &Path) -> io::Result<String> {
    match read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| annotate(e, dir, "could not create"))?;
    let token = generate()?;
    let temporary = dir.join(format!(".token-{}-{}", std::process::id(), &token[..8]));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(token.as_bytes())?;
            file.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(annotate(e, &temporary, "could not write"));
    }
    // A hard link never replaces an existing file: if another process created the token
    // meanwhile, both use that one.
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(token),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(annotate(e, path, "could not create")),
    }
}

/// Whether `text` has the shape of a token.
pub fn is_token(text: &str) -> bool {
    text.len() == 2 * TOKEN_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

fn annotate(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "any-token-test-{}-{name}-{}",
            std::process::id(),
            generate().expect("random")[..8].to_owned()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_token_is_created_private_and_then_reused() {
        let dir = scratch("create");
        let path = dir.join("any").join("token");

        let first = load_or_create(&path).expect("created");
        let again = load_or_create(&path).expect("reused");

        assert!(is_token(&first), "{first}");
        assert_eq!(first, again, "reused across restarts");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        fs::remove_dir_all(dir).expect("clean");
    }

    #[test]
    fn racing_creators_agree_on_one_token() {
        let dir = scratch("race");
        let path = dir.join("token");
        let tokens: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(&path))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("token"))
                .collect()
        });
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
        fs::remove_dir_all(dir).expect("clean");
    }

    #[test]
    fn a_token_others_can_read_or_a_broken_file_is_refused_with_what_to_do() {
        let dir = scratch("refuse");
        let path = dir.join("token");
        load_or_create(&path).expect("created");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let open = read(&path).expect_err("group/world readable");
        assert!(open.to_string().contains("chmod 600"), "{open}");

        fs::write(&path, "not a token").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let broken = load_or_create(&path).expect_err("garbage");
        assert!(broken.to_string().contains("delete it"), "{broken}");

        fs::remove_dir_all(dir).expect("clean");
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
