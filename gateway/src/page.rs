//! Every page a visitor sees: waiting (also in a launch event's pre-queue,
//! and before it: not open yet), upstream unavailable, closed, goodbye,
//! leave confirmation, receipt and 429.
//!
//! No template engine. Each page is an HTML file (`page/*.html`) with
//! `{{key}}` placeholders (see `template`), its words come from one plain
//! file per language (`page/lang/*.toml`, see `texts`), and the operator may
//! replace any of these files, and the style, from `[pages] dir`. Whatever
//! the operator does not replace stays ours. [`Pages::new`] compiles every
//! page in every language once, at startup; rendering is concatenation of
//! ready pieces and a few escaped values.
//!
//! Invariants:
//! - pages are self-contained: inline style and script, no request to
//!   anywhere but the gateway, well under 30 KB. The
//!   Content-Security-Policy sent with them ([`Pages::policy`]) allows just
//!   that: the inline style and script by their hashes, requests to the
//!   gateway itself, images from it or `data:`;
//! - every value is HTML-escaped: words once at compile time, a request's
//!   values (room, query, receipt) when the page is rendered;
//! - the waiting page works without JavaScript (a `<noscript>` meta refresh)
//!   and with it (the script follows the place over the event stream or
//!   polls the status URL, updates in place, and titles the tab); so does
//!   the not-open page, whose script polls (no place, no stream) and
//!   reloads when the door opens;
//! - a launch event's times are shown as a clock on the wall of the
//!   deployment's `time_zone` shows them, by the same rules on the server
//!   and in the script (which reads them from the status JSON's RFC 3339
//!   times, written in that zone), and a countdown counts from the store's
//!   `opens_in_seconds`, never from the visitor's clock.

mod compile;
pub use compile::PagesError;
mod choice;
mod format;
mod template;
#[cfg(test)]
mod tests;
mod texts;
mod waiting;
pub use waiting::{EventView, Stage, WaitingView, WallClock};

use std::fmt::Write as _;

use http::header::HeaderValue;

use anteroom_config::PagesConfig;
use anteroom_store::ReceiptState;
use format::{push_escaped, push_grouped_digits, push_number};
use template::{PageKind, Slot, Template};
use texts::Texts;

/// The cookie that keeps a visitor's chosen language (one of ours: it never
/// reaches the upstream).
pub const LANG_COOKIE: &str = "anteroom_lang";
/// The query parameter of the language switch's links. The gateway takes
/// it out (a redirect to the same address without it, which sets
/// [`LANG_COOKIE`]), so it never reaches the upstream either; named so as
/// not to clash with a site's own `lang`.
pub const LANG_PARAM: &str = "anteroom_lang";

/// One of the languages the pages speak (built in, or from `[pages] dir`).
/// English (the first language, always there) is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lang(u16);

/// Who a page is for: their language, and the query string of the address
/// they are at, for the language switch's links (which keep it).
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub lang: Lang,
    pub query: &'a str,
}

/// Does the visitor hold a room's pass? The site-down page tells them
/// they keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassHeld {
    Yes,
    No,
}

/// The pages, compiled once at startup. Cheap to share (`Arc`) and `Sync`.
#[derive(Debug)]
pub struct Pages {
    /// Indexed by [`Lang`]; English first.
    languages: Vec<Language>,
    policy: HeaderValue,
}

#[derive(Debug)]
struct Language {
    code: String,
    /// The words, HTML-escaped, for rendering.
    html: Texts,
    /// Indexed by `PageKind::index`.
    templates: Vec<Template>,
    /// Rendered once: rejecting a request must cost no rendering.
    too_many: bytes::Bytes,
    /// `(code, escaped name)` of every other language, for the switch.
    others: Vec<(String, String)>,
}

/// The words the waiting page's script needs (it gets them as a table).
const SCRIPT_KEYS: &[&str] = &[
    "digit_separator",
    "title",
    "title_position",
    "turn_title",
    "position_before",
    "position_unknown",
    "ahead_before",
    "ahead_none",
    "eta_before",
    "eta_unknown",
    "eta_paused",
    "eta_less_than_a_minute",
    "eta_about",
    "minute",
    "minutes",
    "hours",
    "opens_line",
    "date_format",
    "weekday_names",
    "month_names",
    "countdown_before",
    "countdown_now",
    "second",
    "seconds",
    "hour",
    "day",
    "days",
    "pre_queue_from_line",
    "same_chance",
    "pre_queue_ticket_before",
    "pre_queue_size_before",
    "draw_place_line",
];

const STYLE_CSS: &str = include_str!("page/style.css");
/// A parenthesised function expression taking the text table.
const WAITING_JS: &str = include_str!("page/waiting.js");
const TOO_MANY_HTML: &str = include_str!("page/too_many.html");

impl Pages {
    /// The built-in pages, in the built-in languages.
    pub fn new() -> Pages {
        Pages::from_config(&PagesConfig::default()).expect("the built-in pages compile (tested)")
    }

    /// The `Content-Security-Policy` of every page: only the pages' own
    /// inline style and scripts run, and they reach only the gateway.
    pub fn policy(&self) -> &HeaderValue {
        &self.policy
    }

    /// Shown when the upstream site cannot be reached or timed out:
    /// friendly, not technical, and it tries again by itself after
    /// `retry_seconds` (a meta refresh). `inside`: the visitor holds a pass,
    /// which the page says they keep.
    pub fn upstream_unavailable(
        &self,
        reader: Reader<'_>,
        retry_seconds: u64,
        held: PassHeld,
    ) -> String {
        let language = self.language(reader.lang);
        let template = &language.templates[PageKind::Unavailable.index()];
        template.render(6 * reader.query.len() + 512, |slot, out| match slot {
            Slot::Retry => push_number(out, retry_seconds),
            Slot::UnavailablePlace if held == PassHeld::Yes => {
                out.push_str("<p class=\"keep\">");
                out.push_str(&language.html.unavailable_place);
                out.push_str("</p>");
            }
            Slot::Languages => push_languages(out, language, "", reader.query),
            _ => {}
        })
    }

    /// Shown after the visitor leaves a room (`/_anteroom/leave`): their
    /// place went to the next person.
    pub fn goodbye(&self, lang: Lang) -> String {
        self.language(lang).templates[PageKind::Goodbye.index()].render(0, |_, _| {})
    }

    /// Shown to a newcomer when the room is closed (admin API); it looks
    /// again by itself after `retry_seconds`.
    pub fn closed(&self, reader: Reader<'_>, retry_seconds: u64) -> String {
        let language = self.language(reader.lang);
        let template = &language.templates[PageKind::Closed.index()];
        template.render(6 * reader.query.len() + 512, |slot, out| match slot {
            Slot::Retry => push_number(out, retry_seconds),
            Slot::Languages => push_languages(out, language, "", reader.query),
            _ => {}
        })
    }

    /// Asks before leaving: a form that posts to `/_anteroom/leave`, so that
    /// a link cannot end a visitor's session.
    pub fn confirm_leave(&self, reader: Reader<'_>, room: &str) -> String {
        let language = self.language(reader.lang);
        let template = &language.templates[PageKind::Leave.index()];
        template.render(
            6 * (room.len() + reader.query.len()) + 512,
            |slot, out| match slot {
                Slot::Room => push_escaped(out, room),
                Slot::Languages => push_languages(out, language, "", reader.query),
                _ => {}
            },
        )
    }

    /// A buffered request's receipt, for browsers: where it stands, and a
    /// meta refresh every `refresh_seconds` until it is finished.
    pub fn receipt(
        &self,
        reader: Reader<'_>,
        id: &str,
        state: &ReceiptState,
        refresh_seconds: Option<u64>,
    ) -> String {
        let language = self.language(reader.lang);
        let texts = &language.html;
        let template = &language.templates[PageKind::Receipt.index()];
        let dynamic_len = 6 * (id.len() + reader.query.len()) + 4096;
        template.render(dynamic_len, |slot, out| match slot {
            Slot::Receipt => push_escaped(out, id),
            Slot::ReceiptRefresh => {
                if let Some(seconds) = refresh_seconds {
                    out.push_str("<meta http-equiv=\"refresh\" content=\"");
                    push_number(out, seconds);
                    out.push_str("\">\n");
                }
            }
            Slot::ReceiptState => match state {
                ReceiptState::Queued {
                    attempts: 0,
                    position,
                } => {
                    out.push_str(&texts.receipt_queued);
                    push_grouped_digits(out, *position, texts);
                }
                ReceiptState::Queued { .. } => out.push_str(&texts.receipt_retrying),
                ReceiptState::Processing { .. } => out.push_str(&texts.receipt_processing),
                // A 3xx is how form sites say "done, look there".
                ReceiptState::Done { status, .. } if (200..400).contains(status) => {
                    out.push_str(&texts.receipt_done);
                }
                ReceiptState::Done { status, body } => {
                    out.push_str(&texts.receipt_refused);
                    push_number(out, u64::from(*status));
                    if !body.is_empty() {
                        out.push_str(" — ");
                        let shown: String = body.chars().take(500).collect();
                        push_escaped(out, &shown);
                    }
                }
                ReceiptState::Failed { .. } => out.push_str(&texts.receipt_failed),
            },
            // Shown also in answer to the form's POST: the links go to the
            // receipt's own address.
            Slot::Languages => {
                let mut address = String::from("/_anteroom/receipts/");
                push_escaped(&mut address, id);
                push_languages(out, language, &address, "");
            }
            _ => {}
        })
    }

    /// The short `429` page, rendered once at startup.
    pub fn too_many_requests(&self, lang: Lang) -> bytes::Bytes {
        self.language(lang).too_many.clone()
    }

    fn language(&self, lang: Lang) -> &Language {
        // A `Lang` only comes from this `Pages`; English is always there.
        self.languages
            .get(usize::from(lang.0))
            .unwrap_or(&self.languages[0])
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

/// The language switch: a link to every other language, back to the same
/// address (`path` empty; its query kept), or to `path` (HTML-escaped
/// already), with [`LANG_PARAM`]. Plain links: no script.
fn push_languages(out: &mut String, language: &Language, path: &str, query: &str) {
    if language.others.is_empty() {
        return;
    }
    out.push_str("<nav class=\"langs\" aria-label=\"");
    out.push_str(&language.html.language_switch_label);
    out.push_str("\">");
    for (code, name) in &language.others {
        out.push_str("<a href=\"");
        out.push_str(path);
        out.push('?');
        for pair in query.split('&') {
            if pair.is_empty() || is_lang_param(pair) {
                continue;
            }
            push_escaped(out, pair);
            out.push_str("&amp;");
        }
        let _ = write!(
            out,
            "{LANG_PARAM}={code}\" hreflang=\"{code}\" lang=\"{code}\">{name}</a>"
        );
    }
    out.push_str("</nav>");
}

/// Whether a `key=value` pair of a query string is the language switch's.
pub fn is_lang_param(pair: &str) -> bool {
    pair.split('=').next() == Some(LANG_PARAM)
}
