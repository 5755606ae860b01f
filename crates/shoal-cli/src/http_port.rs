//! Which address `shoal serve`'s HTTP API and dashboard listen on: `--http`
//! when given; otherwise loopback at the port kept in `DATA/http-port`, which
//! the first `serve` without `--http` picks (a free one) and writes, so the
//! dashboard's URL — and what the browser keeps for it — stays the same
//! across restarts. A kept port that is taken is named in a warning and a
//! free one is used for this run only (the kept one stays).
//!
//! It owns that choice and the file; it must not serve anything.

use crate::datadir::DataDir;
use crate::exit::network;
use anyhow::{Context, Result};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;

/// The file the dashboard's port is kept in (the port's digits and a newline).
pub const HTTP_PORT_FILE: &str = "http-port";

/// A listener for the HTTP API: on `given`, else as the module doc says.
pub async fn bind(data: &DataDir, given: Option<SocketAddr>) -> Result<TcpListener> {
    if let Some(address) = given {
        return TcpListener::bind(address)
            .await
            .map_err(|e| network(format!("cannot listen on --http {address}: {e}")));
    }
    let path = data.file(HTTP_PORT_FILE);
    let kept = read(data)?;
    if let Some(port) = kept {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => tracing::warn!(
                "the dashboard's port {port} (kept in {}) is not free ({e}); using another \
                 port for this run: stop what holds it, or choose one with --http",
                path.display()
            ),
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| network(format!("cannot listen on 127.0.0.1: {e}")))?;
    if kept.is_none() {
        let port = listener
            .local_addr()
            .context("cannot read the HTTP API's address")?
            .port();
        std::fs::write(&path, format!("{port}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(listener)
}

/// The kept port, if any. A file that does not hold a port is named in a
/// warning and treated as absent (the next port picked replaces it).
fn read(data: &DataDir) -> Result<Option<u16>> {
    let path = data.file(HTTP_PORT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match text.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(Some(port)),
        _ => {
            tracing::warn!(
                "{} does not hold a port ({:?}); picking a new one",
                path.display(),
                text.trim()
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (tempfile::TempDir, DataDir) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::at(dir.path().to_path_buf());
        (dir, data)
    }

    fn port(listener: &TcpListener) -> u16 {
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn the_first_port_picked_is_kept_and_reused() {
        let (_dir, data) = data();
        let first = bind(&data, None).await.unwrap();
        let picked = port(&first);
        let kept = std::fs::read_to_string(data.file(HTTP_PORT_FILE)).unwrap();
        assert_eq!(kept, format!("{picked}\n"));
        drop(first);
        let again = bind(&data, None).await.unwrap();
        assert_eq!(port(&again), picked);
    }

    #[tokio::test]
    async fn a_taken_port_falls_back_for_this_run_only() {
        let (_dir, data) = data();
        let holder = bind(&data, None).await.unwrap();
        let kept = port(&holder);
        let other = bind(&data, None).await.unwrap();
        assert_ne!(port(&other), kept);
        assert_eq!(read(&data).unwrap(), Some(kept), "the kept port stays");
    }

    #[tokio::test]
    async fn http_wins_and_keeps_nothing() {
        let (_dir, data) = data();
        let given = bind(&data, Some("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        assert_ne!(port(&given), 0);
        assert!(!data.file(HTTP_PORT_FILE).exists());
    }

    #[tokio::test]
    async fn a_garbled_file_is_replaced() {
        let (_dir, data) = data();
        std::fs::write(data.file(HTTP_PORT_FILE), "not a port\n").unwrap();
        assert_eq!(read(&data).unwrap(), None);
        let listener = bind(&data, None).await.unwrap();
        assert_eq!(read(&data).unwrap(), Some(port(&listener)));
    }
}
