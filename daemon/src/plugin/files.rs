//! The host side of the `files` interface: a plugin reads a file granted to
//! it by name (`files = { users = "/srv/export/users.csv" }` in its config
//! section, and `users` in its manifest). The host reads the granted path at
//! call time, up to `max_file_bytes`, and hands over the content; the plugin
//! never sees the path and has no filesystem. Every error names the grant.

use std::path::Path;

use tokio::io::AsyncReadExt;

use super::bindings::WitError;
use super::bindings::host::vakt::plugin::files;
use super::state::State;

impl files::Host for State {
    async fn read(&mut self, name: String) -> Result<Vec<u8>, WitError> {
        let Some(path) = self.caps.files.get(&name).cloned() else {
            let message = format!(
                "file `{name}` is not granted to plugin `{}` (or not in its manifest)",
                self.caps.name
            );
            self.violations.lock().unwrap().push(message.clone());
            return Err(error(message, false));
        };
        read_capped(&self.caps.name, &name, &path, self.caps.max_file_bytes).await
    }
}

fn error(message: String, retryable: bool) -> WitError {
    WitError {
        message,
        retryable,
        retry_after_secs: None,
    }
}

/// Reads granted file `name` at `path`, refusing anything over `max` bytes
/// (checked before reading, and again while reading in case it grows).
pub async fn read_capped(
    plugin: &str,
    name: &str,
    path: &Path,
    max: u64,
) -> Result<Vec<u8>, WitError> {
    let grant = format!(
        "file `{name}` granted to plugin `{plugin}` (`{}`)",
        path.display()
    );
    let fix = format!("check `files.{name}` in [plugins.{plugin}]");
    let io = |e: std::io::Error| {
        // A missing file may be an export being replaced: worth a retry.
        let retryable = e.kind() == std::io::ErrorKind::NotFound;
        error(format!("cannot read {grant}: {e}; {fix}"), retryable)
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let meta = file.metadata().await.map_err(io)?;
    if !meta.is_file() {
        return Err(error(
            format!("cannot read {grant}: it is not a regular file; {fix}"),
            false,
        ));
    }
    let too_big = |size: String| {
        error(
            format!(
                "{grant} is {size} bytes, over its cap of {max} bytes; raise \
                 `max_file_bytes` in [plugins.{plugin}] (and `memory_limit_mib`, \
                 since the plugin holds the content) or make the file smaller"
            ),
            false,
        )
    };
    if meta.len() > max {
        return Err(too_big(meta.len().to_string()));
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut content)
        .await
        .map_err(io)?;
    if content.len() as u64 > max {
        return Err(too_big(format!("more than {max}")));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_granted_file_is_read_up_to_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, b"id,user_name\n1,ada\n").unwrap();
        let content = read_capped("dir", "users", &path, 1024).await.unwrap();
        assert_eq!(content, b"id,user_name\n1,ada\n");

        let e = read_capped("dir", "users", &path, 5).await.unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message.contains("file `users` granted to plugin `dir`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("max_file_bytes"), "{}", e.message);

        let e = read_capped("dir", "users", &dir.path().join("gone.csv"), 1024)
            .await
            .unwrap_err();
        assert!(
            e.message.contains("file `users` granted to plugin `dir`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("gone.csv"), "{}", e.message);

        let e = read_capped("dir", "users", dir.path(), 1024)
            .await
            .unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
    }
}
