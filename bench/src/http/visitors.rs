//! The visitors the runs need: a waiting visitor's ticket, full rooms, a
//! fresh pass before each proxy run, and the long queue.

use std::time::Instant;

use super::gateway::{Gateway, RoomPlan};
use super::report::QueueMemory;
use super::{Bench, Scenario, wrk};
use crate::fetch::Client;

/// Time for requests still in flight when wrk stops to end, and for the
/// gateway's cached room figures (stepped every 100 ms) to catch up.
pub(super) const SETTLE: std::time::Duration = std::time::Duration::from_millis(400);

/// A visitor waiting in `room` (full: one visitor went in first): their
/// ticket, and the status body their poll gets.
pub(super) async fn waiting_visitor(
    client: &Client,
    gateway: &Gateway,
    room: &RoomPlan,
) -> Result<(String, String), String> {
    occupy(client, gateway, room).await?;
    let reply = client.get(&gateway.url(&room.path), &[]).await?;
    let ticket = reply.cookie(&ticket_cookie(room)).ok_or_else(|| {
        format!(
            "room {}: the second visitor got no ticket ({})",
            room.name, reply.status
        )
    })?;
    let body = status_of(client, gateway, room, &ticket).await?;
    Ok((ticket, body))
}

/// Lets one visitor into a room of capacity 1, so that it is full.
pub(super) async fn occupy(
    client: &Client,
    gateway: &Gateway,
    room: &RoomPlan,
) -> Result<(), String> {
    let reply = client.get(&gateway.url(&room.path), &[]).await?;
    match reply.cookie(&pass_cookie(room)) {
        Some(_) => Ok(()),
        None => Err(format!(
            "room {}: the first visitor was not let in ({})",
            room.name, reply.status
        )),
    }
}

/// The status JSON a ticket holder gets; an error unless they are waiting.
pub(super) async fn status_of(
    client: &Client,
    gateway: &Gateway,
    room: &RoomPlan,
    ticket: &str,
) -> Result<String, String> {
    let cookie = format!("{}={ticket}", ticket_cookie(room));
    let reply = client
        .get(&gateway.url(&status_path(room)), &[("cookie", &cookie)])
        .await?;
    let status = reply.json()?;
    if !reply.status.is_success() || status["state"] != "waiting" {
        return Err(format!(
            "room {}: the waiting visitor's status is {} {}, not waiting",
            room.name,
            reply.status,
            reply.text()
        ));
    }
    Ok(reply.text())
}

pub(super) fn ticket_cookie(room: &RoomPlan) -> String {
    format!("anteroom_ticket_{}", room.name)
}

pub(super) fn pass_cookie(room: &RoomPlan) -> String {
    format!("anteroom_pass_{}", room.name)
}

pub(super) fn status_path(room: &RoomPlan) -> String {
    format!("/_anteroom/status?room={}", room.name)
}

impl Bench {
    /// Fills every full room with its one visitor inside, and the long
    /// queue with `--queued` visitors. Returns the Redis memory that cost.
    pub(super) async fn prepare(&mut self) -> Result<Option<QueueMemory>, String> {
        if !self.args.scenarios.contains(&Scenario::Arrivals) {
            return Ok(None);
        }
        let mut full = vec![&self.rooms.warmup, &self.rooms.queued];
        full.extend(&self.rooms.fresh);
        for room in full {
            occupy(&self.client, &self.gateway, room).await?;
        }
        if self.args.queued == 0 {
            return Ok(None);
        }
        self.fill_queue().await.map(Some)
    }

    /// New arrivals through the gateway with wrk (each request takes a
    /// ticket, exactly as in the measured runs) until `--queued` wait.
    async fn fill_queue(&mut self) -> Result<QueueMemory, String> {
        let room = &self.rooms.queued;
        let target = self.args.queued;
        let url = self.gateway.url(&room.path);
        let memory_before = self.redis.used_memory().await?;
        let waiting_before = self
            .gateway
            .room_figure(&self.client, &room.name, "waiting")
            .await?;
        let started = Instant::now();
        // The first 2 s measure the pace; then each wrk run lasts the whole
        // seconds the rest needs at that pace (the last overshoots by less
        // than a second's worth).
        let mut rate: Option<f64> = None;
        let mut waiting = waiting_before;
        while waiting < target {
            let seconds = rate.map_or(2, |rate| {
                ((target - waiting) as f64 / rate).floor().clamp(1.0, 60.0) as u64
            });
            eprintln!(
                "filling the queue: {waiting} of {target} waiting, {seconds} s more of arrivals"
            );
            let figures = wrk::run(&self.wrk, self.load, seconds, &url, &[]).await?;
            if figures.non_2xx > 0 || figures.socket_errors.total() > 0 {
                return Err(format!(
                    "filling the queue: {} of {} arrivals failed ({} socket errors)",
                    figures.non_2xx,
                    figures.requests,
                    figures.socket_errors.total()
                ));
            }
            rate = Some(figures.requests_per_second.max(1_000.0));
            tokio::time::sleep(SETTLE).await;
            waiting = self
                .gateway
                .room_figure(&self.client, &room.name, "waiting")
                .await?;
        }
        let memory_after = self.redis.used_memory().await?;
        let added = waiting - waiting_before;
        eprintln!("queue filled: {waiting} waiting");
        Ok(QueueMemory {
            used_memory_before: memory_before,
            used_memory_after: memory_after,
            visitors_added: added,
            bytes_per_visitor: (memory_after as f64 - memory_before as f64) / added.max(1) as f64,
            fill_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// A new pass for the roomy room.
    pub(super) async fn fresh_pass(&self) -> Result<String, String> {
        let room = &self.rooms.inside;
        let reply = self.client.get(&self.gateway.url(&room.path), &[]).await?;
        reply.cookie(&pass_cookie(room)).ok_or_else(|| {
            format!(
                "room {}: a new visitor was not let in ({})",
                room.name, reply.status
            )
        })
    }
}
