//! Calls the store could not take (it was unreachable), kept to send once
//! it answers again: leaves, so that their slots go to the next in line
//! then rather than a session later, and voids of arrivals whose replies
//! were lost, so that their numbers hold no slot.

use std::future::Future;

use anteroom_store::StoreError;
use dashmap::DashSet;

/// Pass ids kept for one kind of call, at most `max` of them.
#[derive(Debug)]
pub struct Kept {
    ids: DashSet<String>,
    /// Beyond it an id is not kept: what it would have freed frees itself
    /// later (a session's end, an arrival time), as before it was kept.
    max: usize,
}

impl Kept {
    pub fn new(max: usize) -> Kept {
        Kept {
            ids: DashSet::new(),
            max,
        }
    }

    pub fn keep(&self, id: &str) {
        if self.ids.len() < self.max {
            self.ids.insert(id.to_owned());
        }
    }

    /// Sends every kept id with `send`, in turn. The first that fails is
    /// kept again with every one not sent yet, and its error returned.
    pub async fn deliver<F, Fut>(&self, mut send: F) -> Result<(), StoreError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut taken = Vec::with_capacity(self.ids.len());
        self.ids.retain(|id| {
            taken.push(id.clone());
            false
        });
        let mut ids = taken.into_iter();
        while let Some(id) = ids.next() {
            if let Err(error) = send(id.clone()).await {
                self.keep(&id);
                for rest in ids {
                    self.keep(&rest);
                }
                return Err(error);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_delivery_keeps_the_failed_and_the_rest_and_the_bound_holds() {
        let kept = Kept::new(3);
        for id in ["a", "b", "c", "d"] {
            kept.keep(id);
        }
        let mut sent = Vec::new();
        let result = kept
            .deliver(|id| {
                sent.push(id.clone());
                async move {
                    if sent_fails(&id) {
                        Err(StoreError::Unavailable("down".into()))
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
        assert!(result.is_err());
        // d was never kept (bound 3); what failed and what was not sent
        // yet are kept; what went through is not.
        let mut left: Vec<String> = kept.ids.iter().map(|id| id.clone()).collect();
        left.sort();
        let went: Vec<&String> = sent.iter().take_while(|id| !sent_fails(id)).collect();
        assert_eq!(left.len() + went.len(), 3);
        assert!(went.iter().all(|id| !left.contains(id)));
        assert!(!left.contains(&"d".to_owned()));
        assert!(kept.deliver(|_| async { Ok(()) }).await.is_ok());
        assert!(kept.ids.is_empty());
    }

    fn sent_fails(id: &str) -> bool {
        id == "b"
    }
}
