//! A crowd of visitors, each with its own cookie jar, arriving one after
//! another, waiting their turn, staying a while and leaving, while a test
//! does something bad to the store; then the checks every fault must pass
//! (issue 14's fault suite): the room never held more than its capacity,
//! no ticket number was held by two visitors, nobody's place was lost,
//! everyone who had a place before the fault is ahead of everyone who got
//! one after it, and everyone got in without anyone's help.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::visitor::{Visitor, cookie_value, reached_origin};

/// How a crowd behaves.
#[derive(Debug, Clone)]
pub struct CrowdOptions {
    /// Gateways' base URLs; visitor `i` uses gateway `i % len`.
    pub gateways: Vec<String>,
    pub room: String,
    /// The protected path every visitor asks for.
    pub path: String,
    pub visitors: usize,
    /// Between two visitors' first requests.
    pub arrive_every: Duration,
    /// How long a visitor stays inside before leaving.
    pub stay: Duration,
    /// A visitor not let in by then counts as not admitted.
    pub give_up_after: Duration,
}

/// A crowd on its way; see [`Crowd::start`].
pub struct Crowd {
    fault: Arc<AtomicBool>,
    fault_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    members: Vec<tokio::task::JoinHandle<Member>>,
    max_inside: Arc<AtomicUsize>,
}

/// What one visitor went through.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub index: usize,
    /// Every distinct ticket it was given: (epoch, number). More than one
    /// means it lost its place and had to take a new one.
    pub tickets: Vec<(u64, u64)>,
    /// Its first ticket came after [`Crowd::fault`] was called (or it
    /// arrived then).
    pub after_fault: bool,
    /// Let straight in without a ticket.
    pub direct: bool,
    pub admitted: bool,
    /// When the site first answered it.
    pub admitted_at: Option<tokio::time::Instant>,
}

/// What a crowd went through.
#[derive(Debug)]
pub struct CrowdReport {
    pub members: Vec<Member>,
    /// The most visitors inside at once, as the visitors count themselves
    /// (from the first answer from the site to just before leaving).
    pub max_inside: usize,
    fault_at: Option<tokio::time::Instant>,
}

impl Crowd {
    /// Starts the crowd at once, in the background.
    pub fn start(options: CrowdOptions) -> Crowd {
        let fault = Arc::new(AtomicBool::new(false));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let options = Arc::new(options);
        let members = (0..options.visitors)
            .map(|index| {
                let options = options.clone();
                let fault = fault.clone();
                let inside = inside.clone();
                let max_inside = max_inside.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(options.arrive_every * index as u32).await;
                    visit(index, &options, &fault, &inside, &max_inside).await
                })
            })
            .collect();
        Crowd {
            fault,
            fault_at: std::sync::Mutex::new(None),
            members,
            max_inside,
        }
    }

    /// From now on, a visitor's first ticket counts as taken after the
    /// fault.
    pub fn fault(&self) {
        self.fault.store(true, Ordering::SeqCst);
        if let Ok(mut at) = self.fault_at.lock() {
            at.get_or_insert_with(tokio::time::Instant::now);
        }
    }

    /// Waits for every visitor to be done.
    pub async fn finish(self) -> CrowdReport {
        let mut members = Vec::new();
        for member in self.members {
            members.push(member.await.expect("a visitor's task"));
        }
        CrowdReport {
            members,
            max_inside: self.max_inside.load(Ordering::SeqCst),
            fault_at: self.fault_at.lock().ok().and_then(|at| *at),
        }
    }
}

async fn visit(
    index: usize,
    options: &CrowdOptions,
    fault: &AtomicBool,
    inside: &AtomicUsize,
    max_inside: &AtomicUsize,
) -> Member {
    let base = &options.gateways[index % options.gateways.len()];
    let visitor = Visitor::new(base);
    let ticket_cookie = format!("anteroom_ticket_{}", options.room);
    let mut member = Member {
        index,
        after_fault: fault.load(Ordering::SeqCst),
        ..Member::default()
    };
    let deadline = tokio::time::Instant::now() + options.give_up_after;
    while tokio::time::Instant::now() < deadline {
        let response = visitor.get(&options.path).await;
        if let Some(ticket) = cookie_value(&response, &ticket_cookie).and_then(|t| ticket_of(&t))
            && !member.tickets.contains(&ticket)
        {
            if member.tickets.is_empty() && fault.load(Ordering::SeqCst) {
                member.after_fault = true;
            }
            member.tickets.push(ticket);
        }
        if reached_origin(response).await {
            member.admitted = true;
            member.admitted_at = Some(tokio::time::Instant::now());
            member.direct = member.tickets.is_empty();
            let now_inside = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_inside.fetch_max(now_inside, Ordering::SeqCst);
            tokio::time::sleep(options.stay).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            visitor.leave(&options.room).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    member
}

/// (epoch, number) of a ticket cookie: `key.base64(t|room|epoch|number|issued_at).mac`.
fn ticket_of(token: &str) -> Option<(u64, u64)> {
    let payload = token.split('.').nth(1)?;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let fields: Vec<&str> = text.split('|').collect();
    match fields.as_slice() {
        ["t", _room, epoch, number, _issued_at] => {
            Some((epoch.parse().ok()?, number.parse().ok()?))
        }
        _ => None,
    }
}

impl CrowdReport {
    /// Every check of the fault suite, each failing with what it found.
    pub fn assert_fair(&self, capacity: usize) {
        assert!(
            self.max_inside <= capacity,
            "{} inside at once, capacity {capacity}",
            self.max_inside
        );
        let mut holders: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
        for member in &self.members {
            for ticket in &member.tickets {
                holders.entry(*ticket).or_default().push(member.index);
            }
        }
        let doubled: Vec<_> = holders.iter().filter(|(_, who)| who.len() > 1).collect();
        assert!(
            doubled.is_empty(),
            "tickets held by two visitors: {doubled:?}"
        );
        let lost: Vec<_> = self
            .members
            .iter()
            .filter(|m| m.tickets.len() > 1)
            .collect();
        assert!(lost.is_empty(), "visitors who lost their place: {lost:?}");
        let not_in: Vec<_> = self.members.iter().filter(|m| !m.admitted).collect();
        assert!(not_in.is_empty(), "visitors never let in: {not_in:?}");
        let before = self
            .members
            .iter()
            .filter(|m| !m.after_fault)
            .flat_map(|m| m.tickets.first());
        let after = self
            .members
            .iter()
            .filter(|m| m.after_fault)
            .flat_map(|m| m.tickets.first());
        if let (Some(last_before), Some(first_after)) = (before.max(), after.min()) {
            assert!(
                last_before < first_after,
                "a place taken after the fault ({first_after:?}) is ahead of one taken before \
                 it ({last_before:?})"
            );
        }
    }

    /// From the fault to the first visitor let in after it: how long
    /// admissions stopped (a figure for the README, never asserted).
    pub fn resumed_after(&self) -> Option<Duration> {
        let fault_at = self.fault_at?;
        self.members
            .iter()
            .filter_map(|member| member.admitted_at)
            .filter(|at| *at >= fault_at)
            .min()
            .map(|at| at - fault_at)
    }

    /// How many visitors held a ticket (rather than going straight in).
    pub fn ticketed(&self) -> usize {
        self.members
            .iter()
            .filter(|m| !m.tickets.is_empty())
            .count()
    }
}
