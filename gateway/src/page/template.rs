//! Page templates: HTML with `{{key}}` placeholders, compiled once per
//! language at startup.
//!
//! A placeholder is one of three kinds:
//! - a *part* (`{{head}}`, `{{status}}`, `{{script}}`, `{{leave_form}}`): a
//!   piece of markup the gateway owns, so that a page keeps working (and
//!   keeps its Content-Security-Policy) whatever the template around it
//!   says. Parts are expanded first; an operator's template must hold the
//!   required ones exactly once;
//! - a *word*: any key of the language files, or `{{lang}}`; baked in at
//!   compile time, escaped;
//! - a *slot*: a value of one request (a position, a room name), filled in
//!   at render time, escaped. Each page allows its own slots.
//!
//! Compiling splits what remains at the slots, so rendering is
//! concatenation of ready pieces and a few escaped values.

use super::texts::Texts;

/// The pages a visitor can see, each an `.html` file the operator may
/// replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageKind {
    Waiting,
    NotOpen,
    Unavailable,
    Closed,
    Goodbye,
    Leave,
    Receipt,
}

/// A value filled in per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Refresh,
    Room,
    StatusUrl,
    UpdatedUnix,
    Updated,
    PageTitle,
    PositionLabel,
    Position,
    Ahead,
    Eta,
    PausedHidden,
    ClosedHidden,
    TroubleHidden,
    OpensIn,
    Opens,
    Countdown,
    PreQueueFrom,
    SameChance,
    PreQueueSize,
    DrawPlace,
    DrawUrl,
    DrawHidden,
    Retry,
    UnavailablePlace,
    Receipt,
    ReceiptState,
    ReceiptRefresh,
    Languages,
}

/// What the parts and words are baked from, for one language.
pub(super) struct LanguageParts<'a> {
    pub code: &'a str,
    /// The words, already HTML-escaped.
    pub html: &'a Texts,
    pub style: &'a str,
    /// The whole `<script>` element of the waiting and not-open pages.
    pub script_element: &'a str,
}

/// A page in one language, split at its slots.
#[derive(Debug)]
pub(super) struct Template {
    pieces: Vec<Piece>,
    static_len: usize,
}

#[derive(Debug)]
enum Piece {
    Text(Box<str>),
    Slot(Slot),
}

impl PageKind {
    pub(super) const ALL: [PageKind; 7] = [
        PageKind::Waiting,
        PageKind::NotOpen,
        PageKind::Unavailable,
        PageKind::Closed,
        PageKind::Goodbye,
        PageKind::Leave,
        PageKind::Receipt,
    ];

    /// The template's file name, built in and in the operator's directory.
    pub(super) fn file_name(self) -> &'static str {
        match self {
            PageKind::Waiting => "waiting.html",
            PageKind::NotOpen => "not_open.html",
            PageKind::Unavailable => "unavailable.html",
            PageKind::Closed => "closed.html",
            PageKind::Goodbye => "goodbye.html",
            PageKind::Leave => "leave.html",
            PageKind::Receipt => "receipt.html",
        }
    }

    pub(super) fn built_in(self) -> &'static str {
        match self {
            PageKind::Waiting => include_str!("waiting.html"),
            PageKind::NotOpen => include_str!("not_open.html"),
            PageKind::Unavailable => include_str!("unavailable.html"),
            PageKind::Closed => include_str!("closed.html"),
            PageKind::Goodbye => include_str!("goodbye.html"),
            PageKind::Leave => include_str!("leave.html"),
            PageKind::Receipt => include_str!("receipt.html"),
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The parts this page must hold, once each.
    pub(super) fn required_parts(self) -> &'static [&'static str] {
        match self {
            PageKind::Waiting | PageKind::NotOpen => &["head", "status", "script"],
            PageKind::Leave => &["head", "leave_form"],
            PageKind::Receipt => &["head", "receipt_state"],
            PageKind::Unavailable | PageKind::Closed | PageKind::Goodbye => &["head"],
        }
    }

    /// The slots this page fills (the parts' included).
    fn slots(self) -> &'static [Slot] {
        match self {
            PageKind::Waiting => &[
                Slot::Refresh,
                Slot::Room,
                Slot::StatusUrl,
                Slot::UpdatedUnix,
                Slot::Updated,
                Slot::PageTitle,
                Slot::PositionLabel,
                Slot::Position,
                Slot::Ahead,
                Slot::Eta,
                Slot::PausedHidden,
                Slot::ClosedHidden,
                Slot::TroubleHidden,
                Slot::OpensIn,
                Slot::Opens,
                Slot::Countdown,
                Slot::SameChance,
                Slot::PreQueueSize,
                Slot::DrawPlace,
                Slot::DrawUrl,
                Slot::DrawHidden,
                Slot::Languages,
            ],
            PageKind::NotOpen => &[
                Slot::Refresh,
                Slot::Room,
                Slot::StatusUrl,
                Slot::UpdatedUnix,
                Slot::Updated,
                Slot::OpensIn,
                Slot::Opens,
                Slot::Countdown,
                Slot::PreQueueFrom,
                Slot::SameChance,
                Slot::Languages,
            ],
            PageKind::Unavailable => &[Slot::Retry, Slot::UnavailablePlace, Slot::Languages],
            PageKind::Closed => &[Slot::Retry, Slot::Languages],
            // Shown in answer to a POST: a link back to it would not show it.
            PageKind::Goodbye => &[],
            PageKind::Leave => &[Slot::Room, Slot::Languages],
            PageKind::Receipt => &[
                Slot::Receipt,
                Slot::ReceiptState,
                Slot::ReceiptRefresh,
                Slot::Languages,
            ],
        }
    }

    /// The markup of part `name` on this page; `None` if it is not a part.
    fn part(self, name: &str) -> Option<String> {
        Some(match name {
            "head" => {
                let (refresh, title) = match self {
                    PageKind::Waiting => (
                        "<noscript><meta http-equiv=\"refresh\" content=\"{{refresh}}\"></noscript>\n",
                        "{{page_title}}",
                    ),
                    PageKind::NotOpen => (
                        "<noscript><meta http-equiv=\"refresh\" content=\"{{refresh}}\"></noscript>\n",
                        "{{not_open_title}}",
                    ),
                    PageKind::Unavailable => (
                        "<meta http-equiv=\"refresh\" content=\"{{retry}}\">\n",
                        "{{unavailable_title}}",
                    ),
                    PageKind::Closed => (
                        "<meta http-equiv=\"refresh\" content=\"{{retry}}\">\n",
                        "{{closed_title}}",
                    ),
                    PageKind::Goodbye => ("", "{{goodbye_title}}"),
                    PageKind::Leave => ("", "{{leave_title}}"),
                    PageKind::Receipt => ("{{receipt_refresh}}", "{{receipt_title}}"),
                };
                [
                    "<meta charset=\"utf-8\">\n\
                     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
                     <meta name=\"robots\" content=\"noindex\">\n",
                    refresh,
                    "<title>",
                    title,
                    "</title>\n<style>{{style}}</style>",
                ]
                .concat()
            }
            "status" if self == PageKind::Waiting => STATUS_PART.to_owned(),
            "status" if self == PageKind::NotOpen => NOT_OPEN_STATUS_PART.to_owned(),
            // Baked whole by the compiler, never scanned for placeholders.
            "script" if matches!(self, PageKind::Waiting | PageKind::NotOpen) => {
                "{{script}}".to_owned()
            }
            "leave_form" if self == PageKind::Leave => LEAVE_FORM_PART.to_owned(),
            // A slot, named like a part so that the receipt page requires it.
            "receipt_state" if self == PageKind::Receipt => "{{receipt_state}}".to_owned(),
            _ => return None,
        })
    }
}

/// The waiting page's live part: what the script updates, by id. In a
/// launch event's pre-queue the card shows the ticket, the pre-queue's
/// size, the opening and its countdown; after the draw, the place in it.
/// Empty lines are not shown (`p:empty`). The countdown ticks every second,
/// so it is a `timer` that screen readers do not read out at each tick.
const STATUS_PART: &str = r#"<div id="anteroom" data-status-url="{{status_url}}" data-refresh="{{refresh}}" data-updated="{{updated_unix}}" data-opens-in="{{opens_in}}">
<div aria-live="polite">
<p id="anteroom-turn" class="turn" hidden>{{turn_lead}} <a href="">{{turn_link}}</a></p>
<p id="anteroom-paused" class="notice"{{paused_hidden}}>{{paused}}</p>
<p id="anteroom-closed" class="notice"{{closed_hidden}}>{{closed_waiting}}</p>
<p id="anteroom-trouble" class="notice"{{trouble_hidden}}>{{site_trouble}}</p>
<div class="card">
<p class="position"><span id="anteroom-position-label">{{position_label}}</span><strong id="anteroom-position">{{position}}</strong></p>
<p id="anteroom-ahead">{{ahead}}</p>
<p id="anteroom-eta">{{eta}}</p>
<p id="anteroom-draw-place">{{draw_place}}</p>
<p id="anteroom-pre-queue">{{pre_queue_size}}</p>
<p id="anteroom-opens" class="opens">{{opens}}</p>
<p id="anteroom-countdown" role="timer" aria-live="off">{{countdown}}</p>
</div>
<p id="anteroom-same-chance">{{chance}}</p>
</div>
<p id="anteroom-draw"{{draw_hidden}}>{{draw_check}} <a href="{{draw_url}}">{{draw_link}}</a></p>
<p class="updated">{{updated_before}}<span id="anteroom-updated">{{updated}}</span></p>
</div>"#;

/// The not-open page's live part: the opening, its countdown and, with a
/// pre-queue, when it begins. `data-page` tells the script that this
/// visitor has no place to follow: it polls, and reloads the page (which
/// hands out the ticket) once the status says the door is open.
const NOT_OPEN_STATUS_PART: &str = r#"<div id="anteroom" data-page="not_open" data-status-url="{{status_url}}" data-refresh="{{refresh}}" data-updated="{{updated_unix}}" data-opens-in="{{opens_in}}">
<div aria-live="polite">
<div class="card">
<p id="anteroom-opens" class="opens">{{opens}}</p>
<p id="anteroom-countdown" role="timer" aria-live="off">{{countdown}}</p>
</div>
<p id="anteroom-pre-queue-from">{{pre_queue_from}}</p>
<p id="anteroom-same-chance">{{chance}}</p>
</div>
<p class="updated">{{updated_before}}<span id="anteroom-updated">{{updated}}</span></p>
</div>"#;

/// Posts, so that a link (perhaps on another site) cannot end a session.
const LEAVE_FORM_PART: &str = r#"<form method="post" action="/_anteroom/leave?room={{room}}"><button>{{leave_button}}</button></form>"#;

impl Slot {
    fn from_key(key: &str) -> Option<Slot> {
        Some(match key {
            "refresh" => Slot::Refresh,
            "room" => Slot::Room,
            "status_url" => Slot::StatusUrl,
            "updated_unix" => Slot::UpdatedUnix,
            "updated" => Slot::Updated,
            "page_title" => Slot::PageTitle,
            "position_label" => Slot::PositionLabel,
            "position" => Slot::Position,
            "ahead" => Slot::Ahead,
            "eta" => Slot::Eta,
            "paused_hidden" => Slot::PausedHidden,
            "closed_hidden" => Slot::ClosedHidden,
            "trouble_hidden" => Slot::TroubleHidden,
            "opens_in" => Slot::OpensIn,
            "opens" => Slot::Opens,
            "countdown" => Slot::Countdown,
            "pre_queue_from" => Slot::PreQueueFrom,
            "chance" => Slot::SameChance,
            "pre_queue_size" => Slot::PreQueueSize,
            "draw_place" => Slot::DrawPlace,
            "draw_url" => Slot::DrawUrl,
            "draw_hidden" => Slot::DrawHidden,
            "retry" => Slot::Retry,
            "unavailable_place" => Slot::UnavailablePlace,
            "receipt" => Slot::Receipt,
            "receipt_state" => Slot::ReceiptState,
            "receipt_refresh" => Slot::ReceiptRefresh,
            "languages" => Slot::Languages,
            _ => return None,
        })
    }
}

impl Template {
    /// Compiles `source` as page `kind` in one language. Errors say which
    /// placeholder is wrong; the caller names the file.
    pub(super) fn compile(
        kind: PageKind,
        source: &str,
        parts: &LanguageParts<'_>,
    ) -> Result<Template, String> {
        for part in kind.required_parts() {
            let count = source.matches(&format!("{{{{{part}}}}}")).count();
            if count != 1 {
                return Err(format!(
                    "{{{{{part}}}}} must appear exactly once (found {count}); see the README's placeholders"
                ));
            }
        }
        let expanded = expand_parts(kind, source)?;
        let mut pieces = Vec::new();
        let mut literal = String::with_capacity(expanded.len());
        let mut rest = expanded.as_str();
        while let Some(start) = rest.find("{{") {
            literal.push_str(&rest[..start]);
            let after_open = &rest[start + 2..];
            let end = after_open
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder at {:?}", preview(&rest[start..])))?;
            let key = &after_open[..end];
            rest = &after_open[end + 2..];
            if let Some(slot) = Slot::from_key(key) {
                if !kind.slots().contains(&slot) {
                    return Err(format!(
                        "{{{{{key}}}}} is not shown on {}",
                        kind.file_name()
                    ));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal).into_boxed_str()));
                }
                pieces.push(Piece::Slot(slot));
            } else if key == "lang" {
                literal.push_str(parts.code);
            } else if key == "style" {
                // Code, pasted as it is; the policy allows it by its hash.
                literal.push_str(parts.style);
            } else if key == "script" {
                literal.push_str(parts.script_element);
            } else if let Some(word) = parts.html.get(key) {
                literal.push_str(word);
            } else {
                return Err(format!("unknown placeholder {{{{{key}}}}}"));
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal.into_boxed_str()));
        }
        let static_len = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.len(),
                Piece::Slot(_) => 0,
            })
            .sum();
        Ok(Template { pieces, static_len })
    }

    /// The page, with `fill` writing each slot's value (escaped).
    pub(super) fn render(
        &self,
        dynamic_len: usize,
        mut fill: impl FnMut(Slot, &mut String),
    ) -> String {
        let mut out = String::with_capacity(self.static_len + dynamic_len);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot(slot) => fill(*slot, &mut out),
            }
        }
        out
    }
}

/// Replaces every part placeholder with its markup (which may hold words,
/// slots, `{{style}}` and `{{script}}`, but no parts).
fn expand_parts(kind: PageKind, source: &str) -> Result<String, String> {
    let mut out = String::with_capacity(source.len() + 2048);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find("}}") else {
            return Err(format!(
                "unclosed placeholder at {:?}",
                preview(&rest[start..])
            ));
        };
        let key = &after_open[..end];
        match kind.part(key) {
            Some(markup) => out.push_str(&markup),
            None => {
                out.push_str("{{");
                out.push_str(key);
                out.push_str("}}");
            }
        }
        rest = &after_open[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The start of a template's text, for an error message.
fn preview(text: &str) -> String {
    text.chars().take(24).collect()
}
