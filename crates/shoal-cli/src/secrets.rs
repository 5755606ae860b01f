//! Secrets in the data directory and where the group key comes from.
//!
//! This module owns the rule for finding the group key — `--secret-file`,
//! then `$SHOAL_SECRET`, then `DATA/group.key`; a text of 64 hex digits is a
//! raw key, anything else a passphrase (Argon2id under the group's salt in
//! `DATA/group.salt`, made at random the first time a group key is loaded
//! and carried in invite codes) — the `group.key`, `group.salt` and `token`
//! files, and how every private file is written: mode 0600, complete or not
//! at all (a temporary file renamed into place).

use crate::datadir::DataDir;
use crate::exit::usage;
use anyhow::{Context, Result};
use shoal::{GroupKey, GroupSalt};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The group key file: 64 hex digits and a newline.
pub const GROUP_KEY_FILE: &str = "group.key";
/// The group's salt: 32 hex digits and a newline (not secret).
pub const GROUP_SALT_FILE: &str = "group.salt";
/// The control API's access token: 64 hex digits and a newline.
pub const TOKEN_FILE: &str = "token";
/// The environment variable that may hold the group secret.
pub const SECRET_ENV: &str = "SHOAL_SECRET";
/// Largest secret file read (a passphrase or a key is a line).
const MAX_SECRET_BYTES: u64 = 4096;

/// Where a group key came from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `--secret-file PATH`.
    SecretFile(PathBuf),
    /// `$SHOAL_SECRET`.
    Env,
    /// `DATA/group.key`.
    KeyFile(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::SecretFile(path) => write!(f, "--secret-file {}", path.display()),
            KeySource::Env => write!(f, "${SECRET_ENV}"),
            KeySource::KeyFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A group key, the group's salt, and where the key came from.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The key.
    pub key: GroupKey,
    /// The group's salt (what a passphrase was stretched under; invites carry it).
    pub salt: GroupSalt,
    /// Its source.
    pub source: KeySource,
    /// Notes for the person running the command (a new passphrase group's
    /// salt, a secret file others can read): the caller shows them, as
    /// hints or as log events.
    pub notes: Vec<String>,
}

/// The group key from the first source that has one (see the module doc),
/// or `None` if none does. Makes the group's salt if the data directory has
/// none yet.
pub fn load_group_key(data: &DataDir, secret_file: Option<&Path>) -> Result<Option<LoadedKey>> {
    let new_group = read_salt_file(data)?.is_none();
    let salt = ensure_salt(data)?;
    let new_note = |text: &str| {
        (new_group && !is_raw_key(text)).then(|| {
            format!(
                "note: a new passphrase group: its salt is in {}. Other machines join it with \
                 an invite code (`shoal invite`), which carries the salt; the same passphrase \
                 under another salt is another group",
                data.file(GROUP_SALT_FILE).display()
            )
        })
    };
    if let Some(path) = secret_file {
        let text = read_small(path)
            .with_context(|| format!("cannot read --secret-file {}", path.display()))?
            .ok_or_else(|| usage(format!("--secret-file {} does not exist", path.display())))?;
        let key = parse_secret(&text, &salt)
            .with_context(|| format!("invalid secret in {}", path.display()))?;
        let notes = shared_warning(path).into_iter().chain(new_note(&text));
        return Ok(Some(LoadedKey {
            key,
            salt,
            source: KeySource::SecretFile(path.to_path_buf()),
            notes: notes.collect(),
        }));
    }
    if let Some(text) = std::env::var_os(SECRET_ENV).filter(|v| !v.is_empty()) {
        let text = text
            .into_string()
            .map_err(|_| usage(format!("${SECRET_ENV} is not valid UTF-8")))?;
        let key = parse_secret(&text, &salt).with_context(|| format!("invalid ${SECRET_ENV}"))?;
        return Ok(Some(LoadedKey {
            key,
            salt,
            source: KeySource::Env,
            notes: new_note(&text).into_iter().collect(),
        }));
    }
    Ok(read_key_file(data)?.map(|key| LoadedKey {
        key,
        salt,
        source: KeySource::KeyFile(data.file(GROUP_KEY_FILE)),
        notes: Vec::new(),
    }))
}

/// A secret as given: 64 hex digits are a raw key, anything else is a
/// passphrase, stretched under `salt`. One trailing line break is not part of it.
pub fn parse_secret(text: &str, salt: &GroupSalt) -> Result<GroupKey> {
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if is_raw_key(text) {
        return GroupKey::from_hex(text).map_err(|e| usage(e.to_string()));
    }
    GroupKey::from_passphrase(text, salt).map_err(|e| usage(e.to_string()))
}

/// Whether a secret's text (one trailing line break aside) is a raw key.
fn is_raw_key(text: &str) -> bool {
    let text = text.trim_end_matches(['\n', '\r']);
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The salt in `DATA/group.salt`, if the file exists.
pub fn read_salt_file(data: &DataDir) -> Result<Option<GroupSalt>> {
    let path = data.file(GROUP_SALT_FILE);
    let Some(text) =
        read_small(&path).with_context(|| format!("cannot read {}", path.display()))?
    else {
        return Ok(None);
    };
    GroupSalt::from_hex(&text).map(Some).map_err(|_| {
        usage(format!(
            "{} is not 32 hex digits; restore it, or remove it and `shoal join` the group again",
            path.display()
        ))
    })
}

/// Writes `DATA/group.salt` (mode 0600), replacing any previous one.
pub fn write_salt_file(data: &DataDir, salt: &GroupSalt) -> Result<()> {
    let path = data.file(GROUP_SALT_FILE);
    write_private(&path, format!("{}\n", salt.to_hex()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The group's salt from `DATA/group.salt`, made at random (and written) if
/// the file does not exist yet: this node starts a group of its own.
pub fn ensure_salt(data: &DataDir) -> Result<GroupSalt> {
    if let Some(salt) = read_salt_file(data)? {
        return Ok(salt);
    }
    let bytes = random_bytes()?;
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&bytes[..16]);
    let salt = GroupSalt::from_random(salt);
    write_salt_file(data, &salt)?;
    Ok(salt)
}

/// The key in `DATA/group.key`, if the file exists.
pub fn read_key_file(data: &DataDir) -> Result<Option<GroupKey>> {
    let path = data.file(GROUP_KEY_FILE);
    let Some(text) =
        read_small(&path).with_context(|| format!("cannot read {}", path.display()))?
    else {
        return Ok(None);
    };
    GroupKey::from_hex(&text).map(Some).map_err(|_| {
        usage(format!(
            "{} is not 64 hex digits; remove it and run `shoal invite` or `shoal join CODE`",
            path.display()
        ))
    })
}

/// Writes `DATA/group.key` (mode 0600), replacing any previous one.
pub fn write_key_file(data: &DataDir, key: &GroupKey) -> Result<()> {
    let path = data.file(GROUP_KEY_FILE);
    write_private(&path, format!("{}\n", key.to_hex()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A fresh random group key.
pub fn random_key() -> Result<GroupKey> {
    Ok(GroupKey::from_random(random_bytes()?))
}

/// The access token in `DATA/token`, if the file exists.
pub fn read_token(data: &DataDir) -> Result<Option<String>> {
    let path = data.file(TOKEN_FILE);
    let Some(text) =
        read_small(&path).with_context(|| format!("cannot read {}", path.display()))?
    else {
        return Ok(None);
    };
    let token = text.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage(format!(
            "{} is not 64 hex digits; remove it and run `shoal init` to make a new one",
            path.display()
        )));
    }
    Ok(Some(token.to_string()))
}

/// The access token in `DATA/token`, created (random, mode 0600) if missing.
pub fn ensure_token(data: &DataDir) -> Result<String> {
    if let Some(token) = read_token(data)? {
        return Ok(token);
    }
    let token: String = random_bytes()?.iter().map(|b| format!("{b:02x}")).collect();
    let path = data.file(TOKEN_FILE);
    write_private(&path, format!("{token}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

fn random_bytes() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(bytes)
}

/// Writes `contents` to `path` with mode 0600: to a temporary file in the same
/// directory, synced, then renamed over `path`, so a reader sees the old
/// file or the new one, never part of one.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // tempfile creates its files with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".shoal-")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn open_private_append(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The text of a small file, or `None` if it does not exist.
fn read_small(path: &Path) -> io::Result<Option<String>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(MAX_SECRET_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_SECRET_BYTES} bytes"),
        ));
    }
    Ok(Some(text))
}

/// A warning when a secret file can be read by other users.
fn shared_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).ok()?;
        (meta.permissions().mode() & 0o077 != 0).then(|| {
            format!(
                "warning: {} can be read by other users; `chmod 600` it",
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_a_raw_key_and_anything_else_a_passphrase() {
        let salt = GroupSalt::from_random([3; 16]);
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_secret(&format!("{hex}\n"), &salt).unwrap(),
            GroupKey::from_hex(&hex).unwrap()
        );
        assert_eq!(
            parse_secret("correct horse\r\n", &salt).unwrap(),
            GroupKey::from_passphrase("correct horse", &salt).unwrap()
        );
        assert!(parse_secret("short", &salt).is_err());
        // 64 characters that are not all hex: a passphrase.
        let not_hex = "zz".repeat(32);
        assert_eq!(
            parse_secret(&not_hex, &salt).unwrap(),
            GroupKey::from_passphrase(&not_hex, &salt).unwrap()
        );
        // 64 bytes of multi-byte text: a passphrase too, never a panic.
        let crabs = "🦀".repeat(16);
        assert!(parse_secret(&crabs, &salt).is_ok());
    }

    #[test]
    fn the_salt_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::at(dir.path().to_path_buf());
        assert!(read_salt_file(&data).unwrap().is_none());
        let salt = ensure_salt(&data).unwrap();
        assert_eq!(ensure_salt(&data).unwrap(), salt);
        assert_eq!(read_salt_file(&data).unwrap(), Some(salt));
        std::fs::write(data.file(GROUP_SALT_FILE), "not hex").unwrap();
        assert!(read_salt_file(&data).is_err());
    }

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
