//! What `store.connect` accepts as the group secret, turned into the group
//! key: an invite code (`shoal2:`/`shoal3:`, printed by `shoal invite`: it
//! carries the key itself), 64 hex digits (a raw group key), or a passphrase
//! with the group's salt (stretched with Argon2id as native nodes do).
//!
//! Invite codes are parsed by `crates/shoal-net/src/invite.rs`, compiled here
//! from its file (as the fuzz target does), so the tab and `shoal join` read
//! a code alike. It owns the classification and the derivation; it keeps
//! nothing (the caller may cache the key).

#[path = "../../../shoal-net/src/invite.rs"]
#[allow(dead_code)]
mod invite;

use crate::error::WebError;
use invite::{Invite, InviteError};
use shoal_core::sync::{GroupKey, GroupSalt};

/// The group key `secret` stands for; `salt` (32 hex digits) is needed for
/// a passphrase only.
pub(crate) fn group_key(secret: &str, salt: Option<&str>) -> Result<GroupKey, WebError> {
    let text = secret.trim();
    if text.starts_with("shoal") && text.contains(':') && text.contains('@') {
        return text
            .parse::<Invite>()
            .map(|invite| invite.key)
            .map_err(|e| {
                WebError::BadSecret(match e {
                    InviteError::Checksum => format!("{e}"),
                    _ => format!("this looks like an invite code but is not one: {e}"),
                })
            });
    }
    if let Ok(key) = GroupKey::from_hex(text) {
        return Ok(key);
    }
    let Some(salt) = salt else {
        return Err(WebError::BadSecret(
            "a passphrase needs the group's salt ({salt: '<32 hex digits>'}); \
             an invite code (`shoal invite`) carries both the key and the salt"
                .into(),
        ));
    };
    let salt = GroupSalt::from_hex(salt).map_err(|e| WebError::BadSecret(e.to_string()))?;
    // The passphrase as typed: only a trailing line break is not part of it
    // (as in a native node's secret file).
    let passphrase = secret
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(secret);
    GroupKey::from_passphrase(passphrase, &salt).map_err(|e| WebError::BadSecret(e.to_string()))
}
