//! Sharing rules: which collections flow to and from which peer. One place
//! decides — catch-up, live pushes, reconciliation and per-record pull/push
//! all ask [`SharingRules::allows`].
//!
//! Each node keeps its own rules, from its own point of view: `Send` means
//! "this node sends the collection to that peer", `Receive` "accepts it from
//! that peer". A collection marked local-only never leaves the node and is
//! never accepted from anyone. Unset pairs default to [`ShareMode::Both`].
//! This module only decides; the store persists the rules (and, per peer,
//! the [`HeldFlows`] last levelled with it).

use crate::ids::CollectionName;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// Which way a collection flows with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareMode {
    /// Nothing flows either way.
    None,
    /// This node sends; it does not accept the peer's changes.
    Send,
    /// This node accepts the peer's changes; it does not send its own.
    Receive,
    /// Both ways (the default).
    #[default]
    Both,
}

impl ShareMode {
    /// Whether this node sends the collection.
    pub fn sends(self) -> bool {
        matches!(self, ShareMode::Send | ShareMode::Both)
    }

    /// Whether this node accepts the collection.
    pub fn receives(self) -> bool {
        matches!(self, ShareMode::Receive | ShareMode::Both)
    }

    /// The mode's name (`none`, `send`, `receive`, `both`).
    pub fn as_str(self) -> &'static str {
        match self {
            ShareMode::None => "none",
            ShareMode::Send => "send",
            ShareMode::Receive => "receive",
            ShareMode::Both => "both",
        }
    }
}

impl fmt::Display for ShareMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShareMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(ShareMode::None),
            "send" => Ok(ShareMode::Send),
            "receive" => Ok(ShareMode::Receive),
            "both" => Ok(ShareMode::Both),
            other => Err(format!(
                "unknown sharing mode {other:?} (expected none, send, receive or both)"
            )),
        }
    }
}

/// A direction of flow, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From this node to the peer.
    ToPeer,
    /// From the peer to this node.
    FromPeer,
}

/// The peer name of a rule that applies to every peer without a rule of its own.
pub const ANY_PEER: &str = "*";

/// A node's sharing rules. Peers are named by their peer id text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharingRules {
    /// The explicit modes, by peer then collection: looked up with borrowed
    /// names, as a merge asks for every change it is given and a push for
    /// every row it sends.
    modes: BTreeMap<String, BTreeMap<CollectionName, ShareMode>>,
    local_only: BTreeSet<CollectionName>,
    /// The group's devices, when it has an owner: narrows every mode by the
    /// peer's admission (see [`crate::devices::Registry::restrict`]).
    devices: Option<std::sync::Arc<crate::devices::Registry>>,
}

impl SharingRules {
    /// Sets the mode for `collection` with `peer`.
    pub fn set(&mut self, peer: impl Into<String>, collection: CollectionName, mode: ShareMode) {
        self.modes
            .entry(peer.into())
            .or_default()
            .insert(collection, mode);
    }

    /// Marks `collection` local-only (or not).
    pub fn set_local_only(&mut self, collection: CollectionName, local_only: bool) {
        if local_only {
            self.local_only.insert(collection);
        } else {
            self.local_only.remove(&collection);
        }
    }

    /// Narrows every mode by the group's device registry (issue 19): a
    /// peer not admitted or revoked gets nothing, a read-only one sends
    /// nothing. `None` (a group without an owner) leaves the rules alone.
    pub fn set_devices(&mut self, devices: Option<std::sync::Arc<crate::devices::Registry>>) {
        self.devices = devices;
    }

    /// The device registry the rules are narrowed by, if the group has an owner.
    pub fn devices(&self) -> Option<&crate::devices::Registry> {
        self.devices.as_deref()
    }

    /// Whether `collection` never leaves this node.
    pub fn is_local_only(&self, collection: &CollectionName) -> bool {
        self.local_only.contains(collection)
    }

    /// The effective mode for `collection` with `peer` (local-only is
    /// `None`): the rule set for that peer, else the rule set for
    /// [`ANY_PEER`], else the default (`Both`).
    ///
    /// ```
    /// use shoal_core::{ANY_PEER, CollectionName, ShareMode, SharingRules};
    /// let diary = CollectionName::new("diary").unwrap();
    /// let mut rules = SharingRules::default();
    /// rules.set(ANY_PEER, diary.clone(), ShareMode::None);
    /// rules.set("friend", diary.clone(), ShareMode::Send);
    /// assert_eq!(rules.mode("stranger", &diary), ShareMode::None);
    /// assert_eq!(rules.mode("friend", &diary), ShareMode::Send);
    /// ```
    pub fn mode(&self, peer: &str, collection: &CollectionName) -> ShareMode {
        let mode = self.rule_mode(peer, collection);
        match &self.devices {
            Some(devices) => devices.restrict(peer, collection, mode),
            None => mode,
        }
    }

    /// The mode the rules alone give (before the device registry narrows it).
    fn rule_mode(&self, peer: &str, collection: &CollectionName) -> ShareMode {
        if self.is_local_only(collection) {
            return ShareMode::None;
        }
        let set_for = |peer: &str| self.modes.get(peer)?.get(collection).copied();
        set_for(peer)
            .or_else(|| set_for(ANY_PEER))
            .unwrap_or_default()
    }

    /// Whether `collection` may flow in `direction` with `peer`.
    pub fn allows(&self, peer: &str, collection: &CollectionName, direction: Direction) -> bool {
        let mode = self.mode(peer, collection);
        match direction {
            Direction::ToPeer => mode.sends(),
            Direction::FromPeer => mode.receives(),
        }
    }

    /// What `newer` lets flow with `peer` that these rules did not: each
    /// collection and direction that starts being allowed, in name order
    /// (receiving before sending). Only collections named by a rule or
    /// marked local-only in either can change: every other one is `Both` in
    /// both.
    ///
    /// ```
    /// use shoal_core::{CollectionName, Direction, ShareMode, SharingRules};
    /// let diary = CollectionName::new("diary").unwrap();
    /// let mut before = SharingRules::default();
    /// before.set("friend", diary.clone(), ShareMode::None);
    /// let mut after = before.clone();
    /// after.set("friend", diary.clone(), ShareMode::Receive);
    /// assert_eq!(before.widened(&after, "friend"), vec![(diary, Direction::FromPeer)]);
    /// assert!(after.widened(&before, "friend").is_empty());
    /// ```
    pub fn widened(&self, newer: &SharingRules, peer: &str) -> Vec<(CollectionName, Direction)> {
        let named = |rules: &SharingRules| -> BTreeSet<CollectionName> {
            let modes = rules
                .modes
                .values()
                .flat_map(|by_collection| by_collection.keys());
            modes.chain(&rules.local_only).cloned().collect()
        };
        let mut collections = named(self);
        collections.extend(named(newer));
        let mut out = Vec::new();
        for collection in collections {
            for direction in [Direction::FromPeer, Direction::ToPeer] {
                if !self.allows(peer, &collection, direction)
                    && newer.allows(peer, &collection, direction)
                {
                    out.push((collection.clone(), direction));
                }
            }
        }
        out
    }

    /// What these rules hold back with `peer`: each collection and
    /// direction they do not let flow. Only collections named by a rule or
    /// marked local-only can be held back, so the set stays small.
    ///
    /// ```
    /// use shoal_core::{CollectionName, Direction, ShareMode, SharingRules};
    /// let diary = CollectionName::new("diary").unwrap();
    /// let mut rules = SharingRules::default();
    /// rules.set("friend", diary.clone(), ShareMode::Send);
    /// let held = rules.held_flows("friend");
    /// assert!(held.contains(&diary, Direction::FromPeer));
    /// assert!(!held.contains(&diary, Direction::ToPeer));
    /// assert!(rules.held_flows("stranger").is_empty());
    /// ```
    pub fn held_flows(&self, peer: &str) -> HeldFlows {
        let modes = self
            .modes
            .values()
            .flat_map(|by_collection| by_collection.keys());
        let mut held = HeldFlows::default();
        for collection in modes.chain(self.local_only.iter()) {
            for direction in [Direction::FromPeer, Direction::ToPeer] {
                if !self.allows(peer, collection, direction) {
                    held.0.insert((collection.clone(), direction));
                }
            }
        }
        held
    }

    /// The explicitly set modes, by (peer, collection).
    pub fn explicit(&self) -> impl Iterator<Item = (&str, &CollectionName, ShareMode)> {
        self.modes.iter().flat_map(|(peer, by_collection)| {
            by_collection
                .iter()
                .map(move |(collection, mode)| (peer.as_str(), collection, *mode))
        })
    }

    /// The local-only collections.
    pub fn local_only(&self) -> impl Iterator<Item = &CollectionName> {
        self.local_only.iter()
    }
}

/// The flows (collection and direction) a node's sharing rules held back
/// with one peer when it last levelled with that peer: the baseline its next
/// session compares the rules with. Cursors move past what a rule held back,
/// so a flow in here that the rules now allow must be levelled — also when
/// the rule widened while the peer was away or the node was stopped. The
/// store persists it per peer; this type only decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldFlows(BTreeSet<(CollectionName, Direction)>);

impl FromIterator<(CollectionName, Direction)> for HeldFlows {
    fn from_iter<I: IntoIterator<Item = (CollectionName, Direction)>>(flows: I) -> Self {
        Self(flows.into_iter().collect())
    }
}

impl HeldFlows {
    /// Whether `collection` was held back in `direction`.
    pub fn contains(&self, collection: &CollectionName, direction: Direction) -> bool {
        self.0.contains(&(collection.clone(), direction))
    }

    /// Whether nothing was held back.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The held-back flows, in collection order.
    pub fn iter(&self) -> impl Iterator<Item = &(CollectionName, Direction)> {
        self.0.iter()
    }

    /// What `rules` now let flow with `peer` of what was held back: the flows
    /// to level, in collection order.
    ///
    /// ```
    /// use shoal_core::{CollectionName, Direction, ShareMode, SharingRules};
    /// let notes = CollectionName::new("notes").unwrap();
    /// let mut rules = SharingRules::default();
    /// rules.set("friend", notes.clone(), ShareMode::None);
    /// let held = rules.held_flows("friend");
    /// rules.set("friend", notes.clone(), ShareMode::Receive);
    /// assert_eq!(held.opened(&rules, "friend"), vec![(notes, Direction::FromPeer)]);
    /// ```
    pub fn opened(&self, rules: &SharingRules, peer: &str) -> Vec<(CollectionName, Direction)> {
        self.0
            .iter()
            .filter(|(collection, direction)| rules.allows(peer, collection, *direction))
            .cloned()
            .collect()
    }

    /// Adds every flow of `held` not here yet (a rule that narrowed: holding
    /// more back is safe at once); whether anything was added.
    pub fn hold(&mut self, held: &HeldFlows) -> bool {
        let before = self.0.len();
        self.0.extend(held.0.iter().cloned());
        self.0.len() != before
    }

    /// Forgets `flows`: they have been levelled with the peer.
    pub fn release<'a>(
        &mut self,
        flows: impl IntoIterator<Item = &'a (CollectionName, Direction)>,
    ) {
        for flow in flows {
            self.0.remove(flow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_decide_each_direction() {
        let notes = CollectionName::new("notes").unwrap();
        let mut rules = SharingRules::default();
        assert!(rules.allows("p", &notes, Direction::ToPeer));
        rules.set("p", notes.clone(), ShareMode::Receive);
        assert!(!rules.allows("p", &notes, Direction::ToPeer));
        assert!(rules.allows("p", &notes, Direction::FromPeer));
        assert!(rules.allows("q", &notes, Direction::ToPeer));
        rules.set_local_only(notes.clone(), true);
        assert!(!rules.allows("p", &notes, Direction::FromPeer));
        assert!(!rules.allows("q", &notes, Direction::ToPeer));
        assert_eq!("send".parse::<ShareMode>(), Ok(ShareMode::Send));
        // Lifting local-only (and a rule for every peer) widens both ways.
        let before = rules.clone();
        rules.set_local_only(notes.clone(), false);
        rules.set(ANY_PEER, notes.clone(), ShareMode::Send);
        assert_eq!(
            before.widened(&rules, "p"),
            vec![(notes.clone(), Direction::FromPeer)]
        );
        assert_eq!(
            before.widened(&rules, "q"),
            vec![(notes.clone(), Direction::ToPeer)]
        );
        assert!(rules.widened(&before, "q").is_empty());
        assert!("sideways".parse::<ShareMode>().is_err());
    }

    #[test]
    fn held_flows_track_what_opened_since_they_were_taken() {
        let (notes, diary) = (
            CollectionName::new("notes").unwrap(),
            CollectionName::new("diary").unwrap(),
        );
        let mut rules = SharingRules::default();
        rules.set(ANY_PEER, notes.clone(), ShareMode::Receive);
        rules.set_local_only(diary.clone(), true);
        let mut baseline = rules.held_flows("p");
        assert!(baseline.contains(&notes, Direction::ToPeer));
        assert!(baseline.contains(&diary, Direction::FromPeer));
        assert!(baseline.contains(&diary, Direction::ToPeer));
        assert!(!baseline.contains(&notes, Direction::FromPeer));
        // Nothing opened yet; a narrowing adds to the baseline.
        assert!(baseline.opened(&rules, "p").is_empty());
        rules.set("p", notes.clone(), ShareMode::None);
        assert!(baseline.hold(&rules.held_flows("p")));
        assert!(!baseline.hold(&rules.held_flows("p")));
        // Lifting local-only and sending notes opens three flows.
        rules.set_local_only(diary.clone(), false);
        rules.set("p", notes.clone(), ShareMode::Send);
        let opened = baseline.opened(&rules, "p");
        assert_eq!(
            opened,
            vec![
                (diary.clone(), Direction::ToPeer),
                (diary.clone(), Direction::FromPeer),
                (notes.clone(), Direction::ToPeer),
            ]
        );
        baseline.release(&opened);
        assert_eq!(baseline, {
            let mut only = HeldFlows::default();
            only.0.insert((notes, Direction::FromPeer));
            only
        });
        let text = serde_json::to_string(&baseline).unwrap();
        assert_eq!(serde_json::from_str::<HeldFlows>(&text).unwrap(), baseline);
    }
}
