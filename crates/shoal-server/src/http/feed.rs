//! The change feed, `GET /api/changes`: Server-Sent Events, one per record
//! per commit, resumable from `since` or `Last-Event-ID` without loss —
//! history from the change log first, then live from the store's
//! subscription, falling back to the log whenever the subscription lagged,
//! the head moved without an event, or a live version skipped one (both: a
//! commit by another process), so every commit arrives in order.
//!
//! Memory stays bounded: the log is read a page at a time, and events go
//! to the client through a small channel whose back-pressure the producer
//! waits on (a slow client makes the subscription lag, which the log then
//! covers). It must not drop an event silently nor send one twice in a row.

use super::{Failure, Shared, blocking};
use crate::api::{ApiError, ChangeData};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use shoal::{
    DbVersion, LogPosition, Origin, SiteId, Store, Subscription, SubscriptionError, SyncCursor,
};
use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a comment keeps an idle connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the producer checks for commits it heard nothing of.
const HEAD_CHECK: Duration = Duration::from_secs(1);
/// Records read from the log per page.
const LOG_PAGE: usize = 256;
/// Events waiting for the client.
const CHANNEL: usize = 32;

/// `GET /api/changes` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Send the records committed after this db_version (default: now).
    since: Option<u64>,
}

/// Server-Sent Events: `id: <db_version>`, `event: change`, `data:
/// ChangeData`. A `Last-Event-ID` header takes precedence over `since`.
#[utoipa::path(get, path = "/api/changes", tag = "changes", params(FeedQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this db_version")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream",
            body = ChangeData),
        (status = 400, body = ApiError), (status = 401, body = ApiError)))]
pub async fn changes(
    State(control): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Failure::bad_request("Last-Event-ID must be a db_version"))?,
        ),
        None => None,
    };
    // Subscribed before the history is read, so nothing falls in between.
    // Each of these takes the store's lock: off the executor.
    let store = control.store.clone();
    // The head is refreshed first: a version another process committed is
    // one a client may have seen and resume after.
    let (subscription, site, now) = blocking(move || {
        store.refresh_head().map_err(Failure::store)?;
        Ok((store.subscribe(), store.site_id(), store.db_version().0))
    })
    .await?;
    let since = resume.or(query.since).unwrap_or(now);
    if since > now {
        // A version this node never reached (another node's, or a replaced
        // database): the feed would stay silent until it did.
        return Err(Failure::bad_request(format!(
            "cannot resume after db_version {since}: this node is at {now} \
             (a version from another node, or from a replaced database?)"
        )));
    }
    let (tx, rx) = mpsc::channel(CHANNEL);
    let producer = Producer {
        store: control.store.clone(),
        site,
        tx,
        through: since,
        current: None,
    };
    tokio::spawn(producer.run(subscription));
    let stream = futures::stream::unfold(rx, |mut rx: mpsc::Receiver<Item>| async move {
        loop {
            let item = rx.recv().await?;
            if let Some(event) = item.event() {
                return Some((Ok(event), rx));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

/// One record's change, as the feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    version: u64,
    collection: String,
    id: String,
    local: bool,
}

impl Item {
    fn event(&self) -> Option<Event> {
        let data = ChangeData {
            db_version: self.version,
            collection: self.collection.clone(),
            id: self.id.clone(),
            origin: if self.local { "local" } else { "remote" }.to_string(),
        };
        match Event::default()
            .id(self.version.to_string())
            .event("change")
            .json_data(&data)
        {
            Ok(event) => Some(event),
            Err(e) => {
                tracing::error!("cannot encode a change event: {e}");
                None
            }
        }
    }
}

/// Why the producer stops.
enum Stop {
    /// The client went away.
    Gone,
    /// The store failed or closed.
    Failed,
}

struct Producer {
    store: Store,
    site: SiteId,
    tx: mpsc::Sender<Item>,
    /// Every record committed at or before this version has been sent.
    through: u64,
    /// The version being sent live and the records of it already sent.
    current: Option<(u64, HashSet<(String, String)>)>,
}

impl Producer {
    async fn run(mut self, mut subscription: Subscription) {
        if self.catch_up().await.is_err() {
            return;
        }
        let mut head = self.store.watch_head();
        let mut check = tokio::time::interval(HEAD_CHECK);
        loop {
            let done = tokio::select! {
                () = self.tx.closed() => Err(Stop::Gone),
                next = subscription.next() => match next {
                    Ok(event) => self.live(event.version.0, &event.collection.to_string(),
                        &event.id.to_string(), event.origin == Origin::Local).await,
                    Err(SubscriptionError::Lagged { missed, .. }) => {
                        tracing::debug!("change feed lagged by {missed} events; reading the log");
                        self.catch_up().await
                    }
                    Err(SubscriptionError::Closed) => Err(Stop::Failed),
                },
                _ = check.tick() => {
                    let newest = head.borrow_and_update().0;
                    let sent = self.current.as_ref().map_or(self.through, |(v, _)| *v);
                    if newest > sent { self.catch_up().await } else { Ok(()) }
                }
            };
            if done.is_err() {
                return;
            }
        }
    }

    /// One live event: sent unless the log already covered it.
    async fn live(
        &mut self,
        version: u64,
        collection: &str,
        id: &str,
        local: bool,
    ) -> Result<(), Stop> {
        // This process's commits take consecutive versions; a version that
        // skips one follows a commit another process made (`shoal put` on
        // the same file), which no event announces, or a commit of more
        // than 1,048,575 changes, whose events carry its last version. The log has both, in
        // order: send it first, so the older commit is neither lost nor late.
        let sent = self.current.as_ref().map_or(self.through, |(v, _)| *v);
        if version > sent + 1 {
            self.catch_up().await?;
        }
        if version <= self.through {
            return Ok(());
        }
        let key = (collection.to_string(), id.to_string());
        match &mut self.current {
            Some((v, sent)) if *v == version => {
                if !sent.insert(key) {
                    return Ok(());
                }
            }
            Some((v, _)) if *v > version => return Ok(()),
            current => {
                if let Some((v, _)) = current.take() {
                    self.through = v;
                }
                self.current = Some((version, HashSet::from([key])));
            }
        }
        let item = Item {
            version,
            collection: collection.to_string(),
            id: id.to_string(),
            local,
        };
        self.send(&item).await
    }

    /// Sends every record the log holds after `through`, page by page; the
    /// records of the version being sent live that were sent are skipped.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        let base = DbVersion(self.through);
        let mut after = LogPosition::after_version(base);
        loop {
            let store = self.store.clone();
            let site = self.site;
            let page = blocking(move || Ok(read_page(&store, site, base, after))).await;
            let (items, next) = match page {
                Ok(Ok(page)) => page,
                Ok(Err(e)) | Err(e) => {
                    tracing::error!("change feed cannot read the log: {}", e.message);
                    return Err(Stop::Failed);
                }
            };
            for item in &items {
                let already = self.current.as_ref().is_some_and(|(v, sent)| {
                    *v == item.version && sent.contains(&(item.collection.clone(), item.id.clone()))
                });
                if !already {
                    self.send(item).await?;
                }
                self.through = self.through.max(item.version);
            }
            match next {
                Some(position) => after = position,
                None => break,
            }
        }
        if self
            .current
            .as_ref()
            .is_some_and(|(v, _)| *v <= self.through)
        {
            self.current = None;
        }
        Ok(())
    }

    async fn send(&self, item: &Item) -> Result<(), Stop> {
        self.tx.send(item.clone()).await.map_err(|_| Stop::Gone)
    }
}

/// Up to [`LOG_PAGE`] records whose log position is after `after`, one item
/// each (its slots come together), and where the next page starts (`None`
/// at the end of the log). The origin is the writer of its newest slot.
fn read_page(
    store: &Store,
    site: SiteId,
    base: DbVersion,
    after: LogPosition,
) -> Result<(Vec<Item>, Option<LogPosition>), Failure> {
    let cursor = SyncCursor {
        base,
        position: after,
        partial: None,
    };
    let mut items: Vec<Item> = Vec::new();
    let mut last: Option<(LogPosition, shoal::Clock)> = None;
    for change in store.changes_after(cursor) {
        let change = change.map_err(Failure::store)?;
        let same = items.last().is_some_and(|item| {
            last.is_some_and(|(p, _)| p == change.position)
                && item.collection == change.collection.as_str()
                && item.id == change.id.as_str()
        });
        if same {
            if let (Some(item), Some((_, newest))) = (items.last_mut(), last.as_mut())
                && change.clock > *newest
            {
                *newest = change.clock;
                item.local = change.clock.site == site;
            }
            continue;
        }
        if items.len() == LOG_PAGE {
            return Ok((items, last.map(|(p, _)| p)));
        }
        last = Some((change.position, change.clock));
        items.push(Item {
            version: change.position.version.0,
            collection: change.collection.to_string(),
            id: change.id.to_string(),
            local: change.clock.site == site,
        });
    }
    Ok((items, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shoal::StoreOptions;

    async fn next(rx: &mut mpsc::Receiver<Item>) -> Option<Item> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_lagging_subscription_is_covered_by_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            event_capacity: 4,
            ..StoreOptions::default()
        };
        let store = Store::open_with(dir.path().join("shoal.db"), options).unwrap();
        let notes = store.collection("notes").unwrap();
        notes.put("early", json!({"i": -1})).unwrap();
        let (tx, mut rx) = mpsc::channel(2);
        let producer = Producer {
            store: store.clone(),
            site: store.site_id(),
            tx,
            through: store.db_version().0,
            current: None,
        };
        tokio::spawn(producer.run(store.subscribe()));
        // Let it read the (empty) history and wait on the subscription.
        tokio::time::sleep(Duration::from_millis(100)).await;
        // 100 commits while it cannot run: its subscription (4 events) lags.
        let mut versions = Vec::new();
        for i in 0..100 {
            let v = notes.put(&format!("n{i:03}"), json!({"i": i})).unwrap();
            versions.push(v.unwrap().0);
        }
        for (i, version) in versions.iter().enumerate() {
            let item = next(&mut rx).await.expect("every record arrives");
            assert_eq!(
                (item.version, item.id.as_str(), item.local),
                (*version, format!("n{i:03}").as_str(), true)
            );
        }
        // Nothing twice, and live again afterwards.
        let v = notes.put("after", json!({})).unwrap().unwrap().0;
        let item = next(&mut rx).await.expect("the live write");
        assert_eq!((item.version, item.id.as_str()), (v, "after"));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_commit_by_another_connection_comes_before_the_next_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoal.db");
        let store = Store::open(&path).unwrap();
        // A second connection to the file stands in for `shoal put`: its
        // commits announce nothing to `store`'s subscribers, and nothing
        // here moves `store`'s head, so only the live gap can reveal them.
        let other = Store::open(&path).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let producer = Producer {
            store: store.clone(),
            site: store.site_id(),
            tx,
            through: store.db_version().0,
            current: None,
        };
        tokio::spawn(producer.run(store.subscribe()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut want = Vec::new();
        for i in 0..3 {
            let id = format!("other{i}");
            let v = other
                .collection("notes")
                .unwrap()
                .put(&id, json!({}))
                .unwrap();
            want.push((v.unwrap().0, id));
            let id = format!("ours{i}");
            let v = store
                .collection("notes")
                .unwrap()
                .put(&id, json!({}))
                .unwrap();
            want.push((v.unwrap().0, id));
        }
        for (version, id) in want {
            let item = next(&mut rx).await.expect("every commit arrives");
            assert_eq!((item.version, item.id), (version, id));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "nothing twice"
        );
    }

    #[tokio::test]
    async fn one_commit_of_many_records_is_one_event_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("shoal.db")).unwrap();
        let notes = store.collection("notes").unwrap();
        let v = notes
            .put_many([("a", json!({})), ("b", json!({})), ("c", json!({}))])
            .unwrap()
            .unwrap()
            .0;
        notes.put("a", json!({"again": true})).unwrap();
        let (items, next) = read_page(
            &store,
            store.site_id(),
            DbVersion(0),
            LogPosition::default(),
        )
        .unwrap();
        assert_eq!(next, None);
        let seen: Vec<(u64, &str)> = items.iter().map(|i| (i.version, i.id.as_str())).collect();
        // `a` changed again later: one event, at its last change.
        assert_eq!(seen, [(v, "b"), (v, "c"), (v + 1, "a")]);
    }
}
