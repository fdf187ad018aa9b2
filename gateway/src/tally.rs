//! What each client holds of a shared resource (connections, places at the
//! upstream, bytes of unfinished bodies), so that one client cannot take
//! what belongs to everyone.
//!
//! A client appears here only while it holds something: the map's size is
//! bounded by the resources themselves (connections, in-flight requests),
//! never by the number of clients seen. A [`Held`] share gives itself back
//! when dropped.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

/// Each client's holding of one resource, capped at `max` per client.
#[derive(Debug)]
pub struct Tally {
    held: DashMap<IpAddr, u64>,
    max: u64,
}

impl Tally {
    pub fn new(max: u64) -> Arc<Tally> {
        Arc::new(Tally {
            held: DashMap::new(),
            max,
        })
    }

    /// `amount` more for `client`, unless that takes it past the cap.
    pub fn take(self: &Arc<Self>, client: IpAddr, amount: u64) -> Option<Held> {
        let mut held = Held {
            tally: Arc::clone(self),
            client,
            amount: 0,
        };
        held.grow(amount).then_some(held)
    }

    /// What `client` holds now.
    #[cfg(test)]
    pub fn of(&self, client: &IpAddr) -> u64 {
        self.held.get(client).map_or(0, |held| *held)
    }

    /// Clients holding anything.
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.held.len()
    }
}

/// A client's share of a [`Tally`], given back on drop.
#[derive(Debug)]
pub struct Held {
    tally: Arc<Tally>,
    client: IpAddr,
    amount: u64,
}

impl Held {
    /// Adds `amount` to this share, unless that takes the client past the
    /// cap (then nothing changes).
    pub fn grow(&mut self, amount: u64) -> bool {
        if amount == 0 {
            return true;
        }
        let mut held = self.tally.held.entry(self.client).or_insert(0);
        match held.checked_add(amount) {
            Some(total) if total <= self.tally.max => {
                *held = total;
                self.amount += amount;
                true
            }
            _ => {
                let empty = *held == 0;
                drop(held);
                if empty {
                    self.tally
                        .held
                        .remove_if(&self.client, |_, held| *held == 0);
                }
                false
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.amount == 0 {
            return;
        }
        if let Entry::Occupied(mut entry) = self.tally.held.entry(self.client) {
            let left = entry.get().saturating_sub(self.amount);
            if left == 0 {
                entry.remove();
            } else {
                *entry.get_mut() = left;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_client_gets_up_to_its_cap_and_others_are_not_affected() {
        let tally = Tally::new(2);
        let first = tally.take(A, 1).unwrap();
        let second = tally.take(A, 1).unwrap();
        assert!(tally.take(A, 1).is_none());
        assert!(tally.take(B, 2).is_some());
        drop(first);
        assert_eq!(tally.of(&A), 1);
        assert!(tally.take(A, 1).is_some());
        drop(second);
    }

    #[test]
    fn shares_grow_and_are_given_back_whole() {
        let tally = Tally::new(100);
        let mut share = tally.take(A, 10).unwrap();
        assert!(share.grow(80));
        assert!(!share.grow(11), "past the cap");
        assert_eq!(tally.of(&A), 90);
        drop(share);
        assert_eq!(tally.of(&A), 0);
    }

    #[test]
    fn a_client_holding_nothing_takes_no_memory() {
        let tally = Tally::new(1);
        let share = tally.take(A, 1).unwrap();
        assert!(tally.take(B, 2).is_none(), "over the cap from the start");
        assert_eq!(tally.clients(), 1);
        drop(share);
        assert_eq!(tally.clients(), 0);
    }
}
