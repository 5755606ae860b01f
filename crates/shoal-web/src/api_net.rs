//! The JavaScript `Store`'s network methods: `connect(address, secret,
//! options?)`, `disconnect(address?)`, `peers()` and the `peerId` getter.
//! It owns turning their arguments into the network's (the address, the
//! group key — derived once per secret, Argon2 being slow) and answers into
//! JavaScript values; the network itself is net/'s.

use crate::api_store::Store;
use crate::error::WebError;
use crate::js_error;
use crate::net::{Network, address, secret};
use crate::store_inner::Inner;
use js_sys::{Promise, Reflect};
use shoal_core::sync::GroupKey;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[wasm_bindgen]
extern "C" {
    /// `connect`'s options (`ConnectOptions` in the TypeScript types).
    #[wasm_bindgen(typescript_type = "ConnectOptions")]
    pub type ConnectOptionsArg;
}

thread_local! {
    /// The last secret turned into a key (a hash of the secret and salt,
    /// and the key), so a page redialing with the same passphrase pays
    /// Argon2 once.
    static LAST_KEY: RefCell<Option<([u8; 32], GroupKey)>> = const { RefCell::new(None) };
}

/// The group key for `secret` (and `salt`), from the cache when it was the
/// last one derived.
fn key_for(secret: &str, salt: Option<&str>) -> Result<GroupKey, WebError> {
    let mut hasher = blake3::Hasher::new_derive_key("shoal web secret cache");
    hasher.update(&(secret.len() as u64).to_le_bytes());
    hasher.update(secret.as_bytes());
    hasher.update(salt.unwrap_or("").as_bytes());
    let tag: [u8; 32] = hasher.finalize().into();
    if let Some(key) = LAST_KEY.with_borrow(|last| {
        last.as_ref()
            .filter(|(t, _)| *t == tag)
            .map(|(_, k)| k.clone())
    }) {
        return Ok(key);
    }
    let key = secret::group_key(secret, salt)?;
    LAST_KEY.with_borrow_mut(|last| *last = Some((tag, key.clone())));
    Ok(key)
}

/// The store's network, started on first use.
fn network(inner: &Rc<Inner>) -> Result<Rc<Network>, WebError> {
    inner.db()?;
    if let Some(net) = inner.net.borrow().as_ref() {
        return Ok(net.clone());
    }
    let net = Rc::new(Network::start(inner.clone(), inner.keypair.clone())?);
    *inner.net.borrow_mut() = Some(net.clone());
    Ok(net)
}

#[wasm_bindgen]
impl Store {
    /// This tab's libp2p peer id: stable for the store (kept in IndexedDB),
    /// what daemons list it as in their peer tables.
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.inner.keypair.public().to_peer_id().to_string()
    }

    /// Connects to the peer at `address` (a `/ws` or `/wss` multiaddr
    /// ending in `/p2p/<peer id>`, or a peer behind the group's relay:
    /// `<relay's /ws address>/p2p/<relay id>/p2p-circuit/p2p/<peer id>`,
    /// reached once the relay admitted this tab) as a member of the group `secret` names:
    /// an invite code, 64 hex digits (the raw key), or a passphrase with
    /// `{salt}`. Resolves once both sides proved membership; rejects with
    /// `bad-address`, `bad-secret`, `wrong-secret`, `unreachable` or
    /// `rejected`. Changes then flow both ways; the app redials when the
    /// connection is lost (see `peers()`).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(
        &self,
        address: String,
        secret: String,
        options: Option<ConnectOptionsArg>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let result = async {
                let local = inner.keypair.public().to_peer_id();
                let target = address::parse(&address, &local)?;
                let salt = options
                    .as_ref()
                    .and_then(|o| Reflect::get(o.as_ref(), &"salt".into()).ok())
                    .and_then(|s| s.as_string());
                let key = key_for(&secret, salt.as_deref())?;
                network(&inner)?.connect(target, key).await
            };
            result
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| js_error::to_js(&e))
        })
    }

    /// Disconnects from the peer `address` names (its `/p2p/<peer id>`),
    /// or from every peer without one. Resolves when done; a peer not
    /// connected is no error.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn disconnect(&self, address: Option<String>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let result = async {
                let peer = match address {
                    Some(text) => {
                        let local = inner.keypair.public().to_peer_id();
                        Some(address::parse(&text, &local)?.peer)
                    }
                    None => None,
                };
                let net = inner.net.borrow().clone();
                if let Some(net) = net {
                    net.disconnect(peer).await;
                }
                Ok::<_, WebError>(())
            };
            result
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| js_error::to_js(&e))
        })
    }

    /// The peers this tab was asked to connect to, with their state.
    #[wasm_bindgen(unchecked_return_type = "PeerStatus[]")]
    pub fn peers(&self) -> Result<JsValue, JsValue> {
        let rows = self
            .inner
            .net
            .borrow()
            .as_ref()
            .map(|net| net.peers())
            .unwrap_or_default();
        let text = serde_json::to_string(&rows)
            .map_err(|e| js_error::to_js(&WebError::Storage(format!("peer table: {e}"))))?;
        js_sys::JSON::parse(&text)
    }
}
