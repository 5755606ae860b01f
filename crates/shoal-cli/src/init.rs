//! `shoal init`: creates the data directory, the database (with this
//! node's key) and the control API's access token (`DIR/token`), and prints
//! the node's ids. Idempotent: on an initialized directory it changes
//! nothing and prints the same ids.

use crate::datadir::DataDir;
use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;

/// `shoal init`.
pub fn run(data: &DataDir, out: &mut Output) -> Result<()> {
    let existed = data.has_database()?;
    let store = data.create()?;
    crate::secrets::ensure_token(data)?;
    let status = store.status().context("cannot read the new store")?;
    let database = data.db_path();
    if out.is_json() {
        out.json(&json!({
            "database": database,
            "created": !existed,
            "site_id": status.site.to_string(),
            "peer_id": status.peer_id,
        }))?;
        return Ok(());
    }
    let what = if existed {
        "already initialized"
    } else {
        "initialized"
    };
    out.line(format_args!("{what} {}", database.display()))?;
    out.line(format_args!("peer id  {}", status.peer_id))?;
    out.line(format_args!("site id  {}", status.site))?;
    Ok(())
}
