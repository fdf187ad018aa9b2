//! The waiting page: what it shows one visitor, in line or in a launch
//! event (before its pre-queue, in it, or with a place from its draw).

use anteroom_store::RoomState;

use super::format::{
    push_ahead_line, push_countdown_line, push_draw_place_line, push_escaped, push_eta_line,
    push_grouped_digits, push_number, push_opens_line, push_pre_queue_from_line, push_same_chance,
    push_title_with_position, push_utc_clock,
};
use super::template::{PageKind, Slot};
use super::{Pages, Reader, push_languages};

/// What the waiting page shows one visitor.
#[derive(Debug, Clone, Copy)]
pub struct WaitingView<'a> {
    pub room: &'a str,
    /// Which page, and what the card shows.
    pub stage: Stage,
    /// 1 = next to be let in; `None` when unknown (store unreachable).
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub refresh_seconds: u64,
    /// When the figures were last updated.
    pub updated_unix_seconds: u64,
    /// E.g. `/_anteroom/status?room=vaccini`; URL-safe already, escaped anyway.
    pub status_url: &'a str,
    /// Paused or closed (admin API): nobody is let in for now, places are
    /// kept; the page says so.
    pub room_state: RoomState,
    /// The site is having trouble (the status JSON's `site` is
    /// `trouble`): the page says so, that the place is kept, and shows no
    /// estimate.
    pub site_trouble: bool,
    /// The room's launch event, if it has one.
    pub event: EventView<'a>,
}

/// Where the visitor stands, as far as the page goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the room's pre-queue (or its opening): no ticket; the
    /// not-open page.
    NotOpen,
    /// Holding pre-queue ticket `ticket`, before the draw.
    PreQueue { ticket: u64 },
    /// In line (with a place from the draw, or not).
    InLine,
}

/// A room's launch event as the pages show it; all `None` for a room
/// without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventView<'a> {
    pub opens_at: Option<WallClock>,
    pub pre_queue_from: Option<WallClock>,
    /// On the store's clock; `None` once drawn.
    pub opens_in_seconds: Option<u64>,
    /// Pre-queue tickets so far, final once drawn.
    pub pre_queue: Option<u64>,
    /// A pre-queue ticket's place, once drawn.
    pub draw_place: Option<u64>,
    /// Where the draw can be checked (`/_anteroom/draw?room=…`).
    pub draw_url: Option<&'a str>,
}

/// A moment as a clock on the wall of the deployment's time zone shows
/// it: all a page says of a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// 1 = January.
    pub month: u8,
    pub day: u8,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    pub hour: u8,
    pub minute: u8,
}

impl Pages {
    /// The waiting page for one visitor; before the room's pre-queue (or
    /// opening), the not-open page.
    pub fn waiting(&self, reader: Reader<'_>, view: &WaitingView<'_>) -> String {
        let language = self.language(reader.lang);
        let texts = &language.html;
        let event = &view.event;
        let ticket = match view.stage {
            Stage::PreQueue { ticket } => Some(ticket),
            Stage::NotOpen | Stage::InLine => None,
        };
        // The card's number: the pre-queue ticket before the draw, the
        // position after.
        let number = ticket.or(view.position);
        let before_opening = matches!(view.stage, Stage::NotOpen | Stage::PreQueue { .. });
        let kind = match view.stage {
            Stage::NotOpen => PageKind::NotOpen,
            Stage::PreQueue { .. } | Stage::InLine => PageKind::Waiting,
        };
        // Escaping can grow a string six-fold; the rest of the dynamic parts
        // (numbers, clock, the event's sentences) fit comfortably in 2 KiB.
        let dynamic_len = 6
            * (view.room.len()
                + view.status_url.len()
                + reader.query.len()
                + event.draw_url.map_or(0, str::len))
            + 2048;
        let template = &language.templates[kind.index()];
        template.render(dynamic_len, |slot, out| match slot {
            Slot::Refresh => push_number(out, view.refresh_seconds),
            Slot::Room => push_escaped(out, view.room),
            Slot::StatusUrl => push_escaped(out, view.status_url),
            Slot::UpdatedUnix => push_number(out, view.updated_unix_seconds),
            Slot::Updated => push_utc_clock(out, view.updated_unix_seconds),
            Slot::PageTitle => match view.position.filter(|_| ticket.is_none()) {
                Some(position) => push_title_with_position(out, position, texts),
                None => out.push_str(&texts.title),
            },
            Slot::PositionLabel => out.push_str(match (ticket, view.position) {
                (Some(_), _) => &texts.pre_queue_ticket_before,
                (None, Some(_)) => &texts.position_before,
                (None, None) => &texts.position_unknown,
            }),
            Slot::Position => {
                if let Some(number) = number {
                    push_grouped_digits(out, number, texts);
                }
            }
            Slot::Ahead => {
                if let (None, Some(position)) = (ticket, view.position) {
                    push_ahead_line(out, position, texts);
                }
            }
            Slot::Eta => match (ticket, view.room_state) {
                (Some(_), _) => {}
                // The notice says why there is no estimate.
                (None, _) if view.site_trouble => {}
                (None, RoomState::Open) => push_eta_line(out, view.eta_seconds, texts),
                (None, RoomState::Paused | RoomState::Closed) => out.push_str(&texts.eta_paused),
            },
            Slot::PausedHidden if view.room_state != RoomState::Paused => {
                out.push_str(" hidden");
            }
            Slot::ClosedHidden if view.room_state != RoomState::Closed => {
                out.push_str(" hidden");
            }
            Slot::TroubleHidden if !view.site_trouble => out.push_str(" hidden"),
            Slot::OpensIn => {
                if let Some(seconds) = event.opens_in_seconds.filter(|_| before_opening) {
                    push_number(out, seconds);
                }
            }
            Slot::Opens => {
                if let Some(opens_at) = event.opens_at.filter(|_| before_opening) {
                    push_opens_line(out, opens_at, texts);
                }
            }
            Slot::Countdown => {
                if let Some(seconds) = event.opens_in_seconds.filter(|_| before_opening) {
                    push_countdown_line(out, seconds, texts);
                }
            }
            Slot::PreQueueFrom => {
                if let (Stage::NotOpen, Some(from), Some(opens_at)) =
                    (view.stage, event.pre_queue_from, event.opens_at)
                {
                    push_pre_queue_from_line(out, from, opens_at, texts);
                }
            }
            Slot::SameChance => {
                let drawing = match view.stage {
                    Stage::PreQueue { .. } => true,
                    Stage::NotOpen => event.pre_queue_from.is_some(),
                    Stage::InLine => false,
                };
                if let Some(opens_at) = event.opens_at.filter(|_| drawing) {
                    push_same_chance(out, opens_at, texts);
                }
            }
            Slot::PreQueueSize => {
                if let (Some(_), Some(size)) = (ticket, event.pre_queue) {
                    out.push_str(&texts.pre_queue_size_before);
                    push_grouped_digits(out, size, texts);
                }
            }
            Slot::DrawPlace => {
                if let (Some(place), Some(size)) = (event.draw_place, event.pre_queue) {
                    push_draw_place_line(out, place, size, texts);
                }
            }
            Slot::DrawUrl => push_escaped(out, event.draw_url.unwrap_or_default()),
            Slot::DrawHidden => {
                let in_the_draw = ticket.is_some() || event.draw_place.is_some();
                if event.draw_url.is_none() || !in_the_draw {
                    out.push_str(" hidden");
                }
            }
            Slot::Languages => push_languages(out, language, "", reader.query),
            _ => {}
        })
    }
}
