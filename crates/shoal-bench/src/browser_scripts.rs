//! The JavaScript the `browser` scenario runs in the tab, each an async
//! function of one argument (see [`crate::webdriver::Browser::run`]). They
//! load the browser build the daemon serves at `/apps/pkg/` and drive
//! shoal-web's public API only; timing is the tab's `performance.now()`.

/// `{}` → `{network: bool}`: loads the build; whether it has
/// `Store.prototype.connect` (the network).
pub const LOAD: &str = r#"async () => {
  const shoal = await import('/apps/pkg/shoal_web.js');
  await shoal.default();
  window.shoal = shoal;
  return { network: typeof shoal.Store.prototype.connect === 'function' };
}"#;

/// `{puts}` → `{ms}`: `puts` single puts, one after another, each awaited
/// (durable in IndexedDB), into a fresh store.
pub const PUTS: &str = r#"async ({ puts }) => {
  const store = await window.shoal.Store.open(`bench-puts-${Date.now()}`);
  const records = store.collection('bench');
  const started = performance.now();
  for (let i = 0; i < puts; i++) {
    await records.put(`r${i}`, { i, text: 'a small record of a few dozen bytes' });
  }
  const ms = performance.now() - started;
  await store.close();
  return { ms };
}"#;

/// `{puts}` → `{ms}`: `puts` single puts made together — every put call
/// made at once, then all awaited (each resolves only when durable; the
/// store's write queue lets them share transactions) — into a fresh store.
/// Fails unless every put resolved as a change of its own, and the last
/// record reads back.
pub const PUTS_TOGETHER: &str = r#"async ({ puts }) => {
  const store = await window.shoal.Store.open(`bench-together-${Date.now()}`);
  const records = store.collection('bench');
  const started = performance.now();
  const written = [];
  for (let i = 0; i < puts; i++) {
    written.push(records.put(`r${i}`, { i, text: 'a small record of a few dozen bytes' }));
  }
  const results = await Promise.all(written);
  const ms = performance.now() - started;
  const versions = new Set(results.filter((r) => r.changed).map((r) => r.version));
  if (versions.size !== puts) throw new Error(`${versions.size} of ${puts} puts changed a record`);
  const last = await records.get(`r${puts - 1}`);
  if (!last || last.i !== puts - 1) throw new Error('the last put does not read back');
  await store.close();
  return { ms };
}"#;

/// `{address, secret, records}` → `{ms}`: a fresh store connects to the
/// daemon holding `records` records in `catchup`; time from the connect
/// call until every one of them was applied (the change feed named each).
/// The store stays open and connected as `window.benchStore`.
pub const CATCHUP: &str = r#"async ({ address, secret, records }) => {
  const store = await window.shoal.Store.open(`bench-catchup-${Date.now()}`);
  window.benchStore = store;
  const seen = new Set();
  let arrived;
  const all = new Promise((resolve) => { arrived = resolve; });
  store.subscribe((change) => {
    if (change.collection !== 'catchup') return;
    seen.add(change.id);
    if (seen.size >= records) arrived();
  });
  const started = performance.now();
  await store.connect(address, secret);
  const timeout = new Promise((_, reject) => setTimeout(
    () => reject(new Error(`only ${seen.size} of ${records} records arrived in 300 s`)), 300000));
  await Promise.race([all, timeout]);
  return { ms: performance.now() - started };
}"#;

/// `{writes, gap_ms}` → `{writes}`: sequential puts into `latency` on the
/// connected store, each carrying `sent`, the wall-clock time (ms since
/// 1970, sub-millisecond) of the put call, `gap_ms` apart.
pub const LATENCY: &str = r#"async ({ writes, gap_ms }) => {
  const records = window.benchStore.collection('latency');
  for (let i = 0; i < writes; i++) {
    await records.put(`w${i}`, { sent: performance.timeOrigin + performance.now(), i });
    await new Promise((resolve) => setTimeout(resolve, gap_ms));
  }
  return { writes };
}"#;
