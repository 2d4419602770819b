//! Media ownership: which call a media endpoint belongs to, from when to when — the one
//! place these rules live. The engine uses it to attribute every RTP/RTCP packet to a
//! call; the live pipeline's capture-side router uses the very same type (with shard
//! numbers as owners) so that a packet goes to the worker whose engine owns its call.
//!
//! The rules (DESIGN.md, "Busy hosts"):
//!
//! * An endpoint announced in SDP (offer, answer, early media) belongs to the owner that
//!   announced it **most recently**, from that SDP on. Media servers hand ports back to
//!   their pool when a call ends and give them to the next call within a second; the
//!   newest announcement is the only one that can be right.
//! * Ownership ends when its owner ends ([`Ownership::release`], after the engine's
//!   linger for stragglers) or when another owner announces the endpoint. An ended call
//!   never keeps an endpoint.
//! * A flow between two endpoints owned by different owners (a port shared by many
//!   calls, such as one conference-bridge port) belongs to a live owner rather than one
//!   that has ended and only lingers for stragglers ([`Ownership::end`]); between two
//!   of a kind, to the owner that lists **both** endpoints; failing that, to the more
//!   recent announcement. (The first rule keeps the capture-side router, which cannot
//!   see when each engine's linger runs out, in step with the engines.)
//!
//! Every change bumps [`Ownership::epoch`]. A caller that caches a flow's owner stores
//! the epoch with it and re-resolves when the epoch moved: no cache outlives the
//! ownership it was derived from, and no change needs a scan of the flows.
//!
//! Memory is O(announced endpoints of live owners); every operation is O(1) but
//! [`Ownership::release`], which is O(the owner's own endpoints).

use std::hash::Hash;
use std::net::SocketAddr;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::time::Timestamp;

/// Whether `rtcp` is the default RTCP endpoint of `rtp` (same address, port + 1).
pub fn is_rtcp_of(rtcp: SocketAddr, rtp: SocketAddr) -> bool {
    rtcp.ip() == rtp.ip() && rtp.port().checked_add(1) == Some(rtcp.port())
}

/// The RTP endpoint whose default RTCP endpoint `rtcp` would be (odd port − 1).
pub fn rtp_of(rtcp: SocketAddr) -> Option<SocketAddr> {
    (rtcp.port() % 2 == 1).then(|| SocketAddr::new(rtcp.ip(), rtcp.port() - 1))
}

/// Who holds an endpoint, since when, and what the owner said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim<K, D> {
    /// The owner.
    pub owner: K,
    /// When it announced the endpoint (its latest announcement).
    pub since: Timestamp,
    /// What it said about the endpoint (payload types, media kind, direction).
    pub data: D,
}

/// Endpoint → owner, with the owners' own endpoint lists.
#[derive(Debug, Clone)]
pub struct Ownership<K, D> {
    by_endpoint: FxHashMap<SocketAddr, Claim<K, D>>,
    by_owner: FxHashMap<K, Vec<SocketAddr>>,
    /// Owners whose call has ended but whose claims linger.
    ended: FxHashSet<K>,
    epoch: u64,
}

impl<K, D> Default for Ownership<K, D> {
    fn default() -> Self {
        Ownership {
            by_endpoint: FxHashMap::default(),
            by_owner: FxHashMap::default(),
            ended: FxHashSet::default(),
            epoch: 0,
        }
    }
}

/// What an announcement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced<K> {
    /// Nobody held the endpoint.
    New,
    /// The same owner announced it again (a re-offer, a new negotiation).
    Renewed,
    /// It moved from this owner to the announcer.
    Taken(K),
}

impl<K: Copy + Eq + Hash, D> Ownership<K, D> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts every change; callers caching a resolution compare it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Endpoints held.
    pub fn len(&self) -> usize {
        self.by_endpoint.len()
    }

    /// Whether no endpoint is held.
    pub fn is_empty(&self) -> bool {
        self.by_endpoint.is_empty()
    }

    /// `owner` announces `endpoint` at `at`, saying `data` about it: from now on the
    /// endpoint is its own.
    pub fn announce(
        &mut self,
        endpoint: SocketAddr,
        owner: K,
        at: Timestamp,
        data: D,
    ) -> Announced<K> {
        self.epoch = self.epoch.wrapping_add(1);
        let list = self.by_owner.entry(owner).or_default();
        if !list.contains(&endpoint) {
            list.push(endpoint);
        }
        let claim = Claim {
            owner,
            since: at,
            data,
        };
        match self.by_endpoint.insert(endpoint, claim) {
            None => Announced::New,
            Some(old) if old.owner == owner => Announced::Renewed,
            Some(old) => Announced::Taken(old.owner),
        }
    }

    /// The claim on an endpoint.
    pub fn claim(&self, endpoint: &SocketAddr) -> Option<&Claim<K, D>> {
        self.by_endpoint.get(endpoint)
    }

    /// Whether `owner` has announced `endpoint` (whether or not it still holds it).
    pub fn lists(&self, owner: K, endpoint: &SocketAddr) -> bool {
        self.by_owner
            .get(&owner)
            .is_some_and(|l| l.contains(endpoint))
    }

    /// Endpoints `owner` has announced.
    pub fn endpoints_of(&self, owner: K) -> &[SocketAddr] {
        self.by_owner.get(&owner).map_or(&[], Vec::as_slice)
    }

    /// The owner of a flow from `src` to `dst`, and the claim on the side that decided
    /// it (the receiver's when it is held by that owner, as the receiver's SDP names the
    /// payload types sent to it).
    pub fn resolve(&self, src: &SocketAddr, dst: &SocketAddr) -> Option<&Claim<K, D>> {
        let (s, d) = (self.by_endpoint.get(src), self.by_endpoint.get(dst));
        match (s, d) {
            (None, None) => None,
            (Some(c), None) | (None, Some(c)) => Some(c),
            (Some(cs), Some(cd)) if cs.owner == cd.owner => Some(cd),
            (Some(cs), Some(cd))
                if self.ended.contains(&cs.owner) != self.ended.contains(&cd.owner) =>
            {
                // A live call over one lingering after its end.
                Some(if self.ended.contains(&cd.owner) {
                    cs
                } else {
                    cd
                })
            }
            (Some(cs), Some(cd)) => {
                // A shared endpoint: the owner listing both ends is the flow's.
                let cd_lists_both = self.lists(cd.owner, src);
                let cs_lists_both = self.lists(cs.owner, dst);
                if cd_lists_both || (!cs_lists_both && cd.since >= cs.since) {
                    Some(cd)
                } else {
                    Some(cs)
                }
            }
        }
    }

    /// `owner`'s call has ended (BYE, CANCEL, a final error): its claims stay until
    /// [`Ownership::release`], for stragglers, but a live owner wins a flow they share.
    pub fn end(&mut self, owner: K) {
        if self.by_owner.contains_key(&owner) && self.ended.insert(owner) {
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// `owner`'s call goes on after all (a new INVITE after a challenge ended it).
    pub fn reopen(&mut self, owner: K) {
        if self.ended.remove(&owner) {
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// Whether `owner` has ended ([`Ownership::end`]) and not been released.
    pub fn has_ended(&self, owner: K) -> bool {
        self.ended.contains(&owner)
    }

    /// `owner` ends: every endpoint it still holds is free again. O(its endpoints).
    pub fn release(&mut self, owner: K) {
        self.ended.remove(&owner);
        let Some(list) = self.by_owner.remove(&owner) else {
            return;
        };
        self.epoch = self.epoch.wrapping_add(1);
        for ep in list {
            if self.by_endpoint.get(&ep).is_some_and(|c| c.owner == owner) {
                self.by_endpoint.remove(&ep);
            }
        }
    }

    /// The owner of an RTCP flow: as [`Ownership::resolve`], else through the RTP
    /// endpoints whose default RTCP endpoints (port + 1) these are.
    pub fn resolve_rtcp(&self, src: &SocketAddr, dst: &SocketAddr) -> Option<&Claim<K, D>> {
        self.resolve(src, dst).or_else(|| {
            let (s, d) = (rtp_of(*src), rtp_of(*dst));
            match (s, d) {
                (Some(s), Some(d)) => self.resolve(&s, &d),
                (Some(s), None) => self.claim(&s),
                (None, Some(d)) => self.claim(&d),
                (None, None) => None,
            }
        })
    }

    /// `owner` gives up one endpoint (an early dialog's that lost to the answered one).
    pub fn release_endpoint(&mut self, endpoint: &SocketAddr, owner: K) {
        if let Some(list) = self.by_owner.get_mut(&owner) {
            list.retain(|e| e != endpoint);
        }
        if self
            .by_endpoint
            .get(endpoint)
            .is_some_and(|c| c.owner == owner)
        {
            self.by_endpoint.remove(endpoint);
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// Moves everything `from` announced to `to` (a pushed call adopted by the SIP
    /// dialog that announced its media). O(from's endpoints).
    pub fn merge(&mut self, from: K, to: K) {
        self.ended.remove(&from);
        let Some(list) = self.by_owner.remove(&from) else {
            return;
        };
        self.epoch = self.epoch.wrapping_add(1);
        for ep in &list {
            if let Some(c) = self.by_endpoint.get_mut(ep) {
                if c.owner == from {
                    c.owner = to;
                }
            }
        }
        let target = self.by_owner.entry(to).or_default();
        for ep in list {
            if !target.contains(&ep) {
                target.push(ep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn newest_announcement_wins_and_release_frees() {
        let mut o: Ownership<u32, ()> = Ownership::new();
        let (a, b) = (ep("10.0.0.1:4000"), ep("10.0.0.2:5000"));
        assert_eq!(o.announce(a, 1, t(0), ()), Announced::New);
        assert_eq!(o.announce(b, 1, t(0), ()), Announced::New);
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(1));
        // The next call gets both ports back within a second.
        assert_eq!(o.announce(a, 2, t(1), ()), Announced::Taken(1));
        assert_eq!(o.announce(b, 2, t(1), ()), Announced::Taken(1));
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(2));
        // Call 1 ending releases nothing of call 2's.
        o.release(1);
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(2));
        o.release(2);
        assert!(o.resolve(&a, &b).is_none());
        assert!(o.is_empty());
    }

    #[test]
    fn shared_endpoint_goes_to_the_owner_listing_both() {
        let mut o: Ownership<u32, ()> = Ownership::new();
        let bridge = ep("10.0.0.9:6000");
        let (x, y) = (ep("192.0.2.1:4000"), ep("192.0.2.2:4000"));
        o.announce(x, 1, t(0), ());
        o.announce(bridge, 1, t(0), ());
        o.announce(y, 2, t(5), ());
        o.announce(bridge, 2, t(5), ());
        // The bridge is held by 2 now, but 1 lists both ends of x <-> bridge.
        assert_eq!(o.resolve(&x, &bridge).map(|c| c.owner), Some(1));
        assert_eq!(o.resolve(&bridge, &x).map(|c| c.owner), Some(1));
        assert_eq!(o.resolve(&y, &bridge).map(|c| c.owner), Some(2));
    }

    #[test]
    fn a_live_owner_wins_a_shared_flow_over_an_ended_one() {
        // Call 1 (A <-> B) ended and lingers; call 2 announces B and an address that
        // is not where its media comes from (a UA writing c=127.0.0.1 in its SDP).
        let mut o: Ownership<u32, ()> = Ownership::new();
        let (a, b, lie) = (
            ep("10.77.0.1:10000"),
            ep("10.77.0.2:10000"),
            ep("127.0.0.1:10000"),
        );
        o.announce(a, 1, t(0), ());
        o.announce(b, 1, t(0), ());
        o.announce(lie, 2, t(10), ());
        o.announce(b, 2, t(10), ());
        // Call 1 lists both ends: while it lives, the flow is its own.
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(1));
        let e = o.epoch();
        o.end(1);
        assert_ne!(o.epoch(), e, "ending changes resolutions");
        assert!(o.has_ended(1));
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(2));
        assert_eq!(o.resolve(&b, &a).map(|c| c.owner), Some(2));
        o.reopen(1);
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(1));
        o.end(1);
        o.release(1);
        assert!(!o.has_ended(1));
        assert_eq!(o.resolve(&a, &b).map(|c| c.owner), Some(2));
    }

    #[test]
    fn epoch_moves_on_every_change() {
        let mut o: Ownership<u32, ()> = Ownership::new();
        let e0 = o.epoch();
        o.announce(ep("10.0.0.1:1"), 1, t(0), ());
        let e1 = o.epoch();
        assert_ne!(e0, e1);
        o.release(7);
        assert_eq!(o.epoch(), e1, "releasing an unknown owner changes nothing");
        o.release(1);
        assert_ne!(o.epoch(), e1);
    }

    #[test]
    fn merge_moves_claims_and_lists() {
        let mut o: Ownership<u32, &str> = Ownership::new();
        let a = ep("10.0.0.1:4000");
        o.announce(a, 1, t(0), "pushed");
        o.merge(1, 2);
        assert_eq!(o.claim(&a).map(|c| c.owner), Some(2));
        assert!(o.lists(2, &a));
        assert!(!o.lists(1, &a));
    }
}
