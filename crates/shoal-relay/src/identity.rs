//! The relay's persistent identity: an Ed25519 key kept in its data
//! directory, so its peer id (part of every relayed address members hold)
//! survives restarts.

use libp2p::identity::Keypair;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// File of the key inside the relay's directory.
const KEY_FILE: &str = "relay.key";

/// Reads the key in `dir`, or makes one (the directory too, mode 0700; the
/// file mode 0600) when there is none. A file that is not a key is an
/// error, never replaced.
pub fn load_or_create_identity(dir: &Path) -> Result<Keypair, String> {
    let path = dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| format!("{} is not a relay key: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| format!("cannot encode the relay key: {e}"))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_survives_a_restart_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("relay");
        let first = load_or_create_identity(&sub).unwrap();
        let again = load_or_create_identity(&sub).unwrap();
        assert_eq!(first.public(), again.public());
        std::fs::write(sub.join(KEY_FILE), b"not a key").unwrap();
        let err = load_or_create_identity(&sub).unwrap_err();
        assert!(err.contains("is not a relay key"), "{err}");
        assert_eq!(std::fs::read(sub.join(KEY_FILE)).unwrap(), b"not a key");
    }
}
