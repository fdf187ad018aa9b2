//! The visitor's pages: the waiting page, the "site unavailable" page and
//! the goodbye page after leaving.
//!
//! No template engine. Each page is an HTML file under `page/` with `{{key}}`
//! placeholders. [`Pages::new`] runs once at startup: it bakes every static
//! key (words in the visitor's language, the CSS, the script) into the text
//! and splits what remains at the dynamic slots, per language. Rendering a
//! page is then concatenation of ready pieces and a few escaped values.
//!
//! Invariants:
//! - pages are self-contained: inline CSS and script, no request to anywhere
//!   but the gateway's own status URL, well under 30 KB;
//! - every dynamic string is HTML-escaped; the static words are free of HTML
//!   metacharacters (tested), so they are pasted as they are;
//! - the waiting page works without JavaScript (a `<noscript>` meta refresh)
//!   and with it (the script polls the status URL and updates in place).

mod texts;

use std::fmt::Write as _;

use anteroom_store::ReceiptState;
use texts::Texts;

/// The languages the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    It,
    En,
}

/// What the waiting page shows one visitor.
#[derive(Debug, Clone, Copy)]
pub struct WaitingView<'a> {
    pub room: &'a str,
    /// 1 = next to be let in; `None` when unknown (store unreachable).
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub refresh_seconds: u64,
    /// When the figures were last updated.
    pub updated_unix_seconds: u64,
    /// E.g. `/_anteroom/status?room=vaccini`; URL-safe already, escaped anyway.
    pub status_url: &'a str,
    /// The room is paused (admin API): nobody is let in for now.
    pub paused: bool,
}

/// The pages, compiled once at startup. Cheap to share (`Arc`) and `Sync`.
#[derive(Debug)]
pub struct Pages {
    /// Indexed by [`Lang::index`].
    waiting: [Template; 2],
    unavailable: [Template; 2],
    goodbye: [Template; 2],
    closed: [Template; 2],
    leave: [Template; 2],
    receipt: [Template; 2],
    /// Rendered once: rejecting a request must cost no rendering.
    too_many: [bytes::Bytes; 2],
}

impl Lang {
    /// Picks Italian or English from an `Accept-Language` header value.
    ///
    /// The supported language with the highest q-value wins (ties: the first
    /// listed); `*` counts as English. Malformed entries are skipped, and
    /// anything unusable, or no header, gives English.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        // Bounds the work a hostile header can cause; real browsers send < 10.
        const MAX_ENTRIES: usize = 32;
        let Some(header) = header else {
            return Lang::En;
        };
        let mut best: Option<(Lang, f32)> = None;
        for entry in header.split(',').take(MAX_ENTRIES) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            let lang = if primary.eq_ignore_ascii_case("it") {
                Lang::It
            } else if primary.eq_ignore_ascii_case("en") || primary == "*" {
                Lang::En
            } else {
                continue;
            };
            let Some(quality) = quality(parts) else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(_, best_quality)| quality > best_quality) {
                best = Some((lang, quality));
            }
        }
        best.map_or(Lang::En, |(lang, _)| lang)
    }

    /// The ISO 639-1 code: `"it"` or `"en"`.
    pub fn code(self) -> &'static str {
        self.texts().code
    }

    fn texts(self) -> &'static Texts {
        match self {
            Lang::It => &texts::ITALIAN,
            Lang::En => &texts::ENGLISH,
        }
    }

    fn index(self) -> usize {
        match self {
            Lang::It => 0,
            Lang::En => 1,
        }
    }
}

impl Pages {
    /// Compiles every page in every language.
    ///
    /// Panics only if the page files themselves are broken (an unknown or
    /// unclosed placeholder): a startup invariant that the tests exercise.
    pub fn new() -> Pages {
        let compile_all = |source: &str, slots: &[Slot]| {
            [Lang::It, Lang::En].map(|lang| Template::compile(source, lang.texts(), slots))
        };
        Pages {
            waiting: compile_all(WAITING_HTML, WAITING_SLOTS),
            unavailable: compile_all(UNAVAILABLE_HTML, UNAVAILABLE_SLOTS),
            goodbye: compile_all(GOODBYE_HTML, &[]),
            closed: compile_all(CLOSED_HTML, &[]),
            leave: compile_all(LEAVE_HTML, &[Slot::Room]),
            receipt: compile_all(RECEIPT_HTML, RECEIPT_SLOTS),
            too_many: compile_all(TOO_MANY_HTML, &[])
                .map(|template| bytes::Bytes::from(template.render(0, |_, _| {}))),
        }
    }

    /// The waiting page for one visitor.
    pub fn waiting(&self, lang: Lang, view: &WaitingView<'_>) -> String {
        let texts = lang.texts();
        // Escaping can grow a string six-fold; the rest of the dynamic parts
        // (numbers, clock, fixed phrases) fit comfortably in 512 bytes.
        let dynamic_len = 6 * (view.room.len() + view.status_url.len()) + 512;
        self.waiting[lang.index()].render(dynamic_len, |slot, out| match slot {
            Slot::Refresh => push_number(out, view.refresh_seconds),
            Slot::Room => push_escaped(out, view.room),
            Slot::StatusUrl => push_escaped(out, view.status_url),
            Slot::UpdatedUnix => push_number(out, view.updated_unix_seconds),
            Slot::Updated => push_utc_clock(out, view.updated_unix_seconds),
            Slot::PositionLabel => out.push_str(match view.position {
                Some(_) => texts.position_before,
                None => texts.position_unknown,
            }),
            Slot::Position => {
                if let Some(position) = view.position {
                    push_grouped_digits(out, position, texts);
                }
            }
            Slot::Ahead => {
                if let Some(position) = view.position {
                    push_ahead_line(out, position, texts);
                }
            }
            Slot::Eta => push_eta_line(out, view.eta_seconds, texts),
            Slot::PausedHidden => {
                if !view.paused {
                    out.push_str(" hidden");
                }
            }
            Slot::Retry | Slot::Receipt | Slot::ReceiptState | Slot::ReceiptRefresh => {}
        })
    }

    /// Shown when the upstream site cannot be reached (502) or timed out
    /// (504): friendly, not technical, and it tries again by itself after
    /// `retry_seconds` (a meta refresh).
    pub fn upstream_unavailable(&self, lang: Lang, retry_seconds: u64) -> String {
        self.unavailable[lang.index()].render(32, |slot, out| {
            if slot == Slot::Retry {
                push_number(out, retry_seconds);
            }
        })
    }

    /// Shown after the visitor leaves a room (`/_anteroom/leave`): their
    /// place went to the next person.
    pub fn goodbye(&self, lang: Lang) -> String {
        self.goodbye[lang.index()].render(0, |_, _| {})
    }

    /// Shown to a newcomer when the room is closed (admin API).
    pub fn closed(&self, lang: Lang) -> String {
        self.closed[lang.index()].render(0, |_, _| {})
    }

    /// Asks before leaving: a form that posts to `/_anteroom/leave`, so that
    /// a link cannot end a visitor's session.
    pub fn confirm_leave(&self, lang: Lang, room: &str) -> String {
        self.leave[lang.index()].render(6 * room.len(), |slot, out| {
            if let Slot::Room = slot {
                push_escaped(out, room);
            }
        })
    }

    /// A buffered request's receipt, for browsers: where it stands, and a
    /// meta refresh every `refresh_seconds` until it is finished.
    pub fn receipt(
        &self,
        lang: Lang,
        id: &str,
        state: &ReceiptState,
        refresh_seconds: Option<u64>,
    ) -> String {
        let texts = lang.texts();
        self.receipt[lang.index()].render(6 * id.len() + 2048, |slot, out| match slot {
            Slot::Receipt => push_escaped(out, id),
            Slot::ReceiptRefresh => {
                if let Some(seconds) = refresh_seconds {
                    out.push_str("<meta http-equiv=\"refresh\" content=\"");
                    push_number(out, seconds);
                    out.push_str("\">");
                }
            }
            Slot::ReceiptState => match state {
                ReceiptState::Queued {
                    attempts: 0,
                    position,
                } => {
                    out.push_str(texts.receipt_queued);
                    push_grouped_digits(out, *position, texts);
                }
                ReceiptState::Queued { .. } => out.push_str(texts.receipt_retrying),
                ReceiptState::Processing { .. } => out.push_str(texts.receipt_processing),
                // A 3xx is how form sites say "done, look there".
                ReceiptState::Done { status, .. } if (200..400).contains(status) => {
                    out.push_str(texts.receipt_done);
                }
                ReceiptState::Done { status, body } => {
                    out.push_str(texts.receipt_refused);
                    push_number(out, u64::from(*status));
                    if !body.is_empty() {
                        out.push_str(" — ");
                        let shown: String = body.chars().take(500).collect();
                        push_escaped(out, &shown);
                    }
                }
                ReceiptState::Failed { .. } => out.push_str(texts.receipt_failed),
            },
            _ => {}
        })
    }

    /// The short `429` page, rendered once at startup.
    pub fn too_many_requests(&self, lang: Lang) -> bytes::Bytes {
        self.too_many[lang.index()].clone()
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

const WAITING_HTML: &str = include_str!("page/waiting.html");
const UNAVAILABLE_HTML: &str = include_str!("page/unavailable.html");
const GOODBYE_HTML: &str = include_str!("page/goodbye.html");
const CLOSED_HTML: &str = include_str!("page/closed.html");
const RECEIPT_HTML: &str = include_str!("page/receipt.html");
const LEAVE_HTML: &str = include_str!("page/leave.html");
const TOO_MANY_HTML: &str = include_str!("page/too_many.html");
const STYLE_CSS: &str = include_str!("page/style.css");
/// A parenthesised function expression taking the text table.
const WAITING_JS: &str = include_str!("page/waiting.js");

/// A value filled in per request. Every other `{{key}}` is baked at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Refresh,
    Room,
    StatusUrl,
    UpdatedUnix,
    Updated,
    PositionLabel,
    Position,
    Ahead,
    Eta,
    Retry,
    Receipt,
    ReceiptState,
    ReceiptRefresh,
    PausedHidden,
}

const WAITING_SLOTS: &[Slot] = &[
    Slot::Refresh,
    Slot::Room,
    Slot::StatusUrl,
    Slot::UpdatedUnix,
    Slot::Updated,
    Slot::PositionLabel,
    Slot::Position,
    Slot::Ahead,
    Slot::Eta,
    Slot::PausedHidden,
];
const UNAVAILABLE_SLOTS: &[Slot] = &[Slot::Retry];
const RECEIPT_SLOTS: &[Slot] = &[Slot::Receipt, Slot::ReceiptState, Slot::ReceiptRefresh];

impl Slot {
    fn from_key(key: &str) -> Option<Slot> {
        Some(match key {
            "refresh" => Slot::Refresh,
            "room" => Slot::Room,
            "status_url" => Slot::StatusUrl,
            "updated_unix" => Slot::UpdatedUnix,
            "updated" => Slot::Updated,
            "position_label" => Slot::PositionLabel,
            "position" => Slot::Position,
            "ahead" => Slot::Ahead,
            "eta" => Slot::Eta,
            "retry" => Slot::Retry,
            "receipt" => Slot::Receipt,
            "receipt_state" => Slot::ReceiptState,
            "receipt_refresh" => Slot::ReceiptRefresh,
            "paused_hidden" => Slot::PausedHidden,
            _ => return None,
        })
    }
}

/// A page in one language, split at its dynamic slots.
#[derive(Debug)]
struct Template {
    pieces: Vec<Piece>,
    static_len: usize,
}

#[derive(Debug)]
enum Piece {
    Text(Box<str>),
    Slot(Slot),
}

impl Template {
    fn compile(source: &str, texts: &Texts, allowed_slots: &[Slot]) -> Template {
        let mut pieces = Vec::new();
        let mut literal = String::with_capacity(source.len() + STYLE_CSS.len() + WAITING_JS.len());
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            literal.push_str(&rest[..start]);
            let after_open = &rest[start + 2..];
            let end = after_open.find("}}").unwrap_or_else(|| {
                panic!("page template: unclosed placeholder at {after_open:.20?}")
            });
            let key = &after_open[..end];
            rest = &after_open[end + 2..];
            if let Some(slot) = Slot::from_key(key) {
                assert!(
                    allowed_slots.contains(&slot),
                    "page template: slot {key} not filled by this page"
                );
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal).into_boxed_str()));
                }
                pieces.push(Piece::Slot(slot));
            } else {
                bake(&mut literal, key, texts);
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
        Template { pieces, static_len }
    }

    fn render(&self, dynamic_len: usize, mut fill: impl FnMut(Slot, &mut String)) -> String {
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

/// Pastes a static key's value: code is pasted as it is, words are checked
/// free of HTML metacharacters by the tests.
fn bake(out: &mut String, key: &str, texts: &Texts) {
    match key {
        "style" => out.push_str(STYLE_CSS.trim_end()),
        "script" => out.push_str(WAITING_JS.trim_end()),
        "texts_json" => push_texts_json(out, texts),
        _ => {
            let value = texts
                .entries()
                .into_iter()
                .find_map(|(name, value)| (name == key).then_some(value))
                .unwrap_or_else(|| panic!("page template: unknown placeholder {key:?}"));
            out.push_str(value);
        }
    }
}

/// The text table as a JavaScript object literal, safe inside `<script>`.
fn push_texts_json(out: &mut String, texts: &Texts) {
    out.push('{');
    for (index, (name, value)) in texts.entries().into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_js_string(out, name);
        out.push(':');
        push_js_string(out, value);
    }
    out.push('}');
}

/// A JSON string literal that cannot end its `<script>` element.
fn push_js_string(out: &mut String, value: &str) {
    out.push('"');
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(character));
            }
            character if character.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(character));
            }
            character => out.push(character),
        }
    }
    out.push('"');
}

/// `q=` of one `Accept-Language` entry: 1 when absent, `None` when malformed.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    for param in params {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            let quality: f32 = value.trim().parse().ok()?;
            return (0.0..=1.0).contains(&quality).then_some(quality);
        }
    }
    Some(1.0)
}

fn push_escaped(out: &mut String, value: &str) {
    let mut last = 0;
    for (index, byte) in value.bytes().enumerate() {
        let replacement = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&value[last..index]);
        out.push_str(replacement);
        last = index + 1;
    }
    out.push_str(&value[last..]);
}

fn push_number(out: &mut String, value: u64) {
    let _ = write!(out, "{value}");
}

/// `HH:MM:SS UTC`; the script shows it in the visitor's own time zone.
fn push_utc_clock(out: &mut String, unix_seconds: u64) {
    let of_day = unix_seconds % 86_400;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
}

/// 12345 → `12,345` (en) or `12.345` (it). Mirrors `groupDigits` in waiting.js.
fn push_grouped_digits(out: &mut String, value: u64, texts: &Texts) {
    // u64::MAX has 20 digits; collected least significant first.
    let mut reversed = [0u8; 20];
    let mut len = 0;
    let mut rest = value;
    loop {
        reversed[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for (printed, digit) in reversed[..len].iter().rev().enumerate() {
        if printed > 0 && (len - printed) % 3 == 0 {
            out.push_str(texts.digit_separator);
        }
        out.push(char::from(*digit));
    }
}

/// Mirrors `aheadLine` in waiting.js.
fn push_ahead_line(out: &mut String, position: u64, texts: &Texts) {
    let ahead = position.saturating_sub(1);
    if ahead == 0 {
        out.push_str(texts.ahead_none);
    } else {
        out.push_str(texts.ahead_before);
        push_grouped_digits(out, ahead, texts);
    }
}

/// Mirrors `etaLine` in waiting.js.
fn push_eta_line(out: &mut String, eta_seconds: Option<u64>, texts: &Texts) {
    match eta_seconds {
        None => out.push_str(texts.eta_unknown),
        Some(seconds) => {
            out.push_str(texts.eta_before);
            push_friendly_eta(out, seconds, texts);
        }
    }
}

/// A wait as a range a person can hold on to; estimates move, so the coarser
/// the longer. Mirrors `friendlyEta` in waiting.js: same buckets, same words.
///
/// - under a minute: "less than a minute"
/// - under 10 minutes: "about N minutes" (rounded)
/// - under 30 minutes: 5-minute ranges, "about 10–15 minutes"
/// - under an hour: 10-minute ranges, "about 30–40 minutes"
/// - under 2 hours: "about 1–2 hours"; then "about N hours" (rounded)
fn push_friendly_eta(out: &mut String, seconds: u64, texts: &Texts) {
    if seconds < 60 {
        out.push_str(texts.eta_less_than_a_minute);
    } else if seconds < 600 {
        let minutes = (seconds + 30) / 60;
        let unit = if minutes == 1 {
            texts.minute
        } else {
            texts.minutes
        };
        let _ = write!(out, "{}{minutes} {unit}", texts.eta_about);
    } else if seconds < 3600 {
        let minutes = seconds / 60;
        let step = if minutes < 30 { 5 } else { 10 };
        let low = minutes / step * step;
        let _ = write!(
            out,
            "{}{low}\u{2013}{} {}",
            texts.eta_about,
            low + step,
            texts.minutes
        );
    } else if seconds < 7200 {
        let _ = write!(out, "{}1\u{2013}2 {}", texts.eta_about, texts.hours);
    } else {
        let hours = seconds.saturating_add(1800) / 3600;
        let _ = write!(out, "{}{hours} {}", texts.eta_about, texts.hours);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>() -> WaitingView<'a> {
        WaitingView {
            room: "vaccini",
            position: Some(42),
            eta_seconds: Some(300),
            refresh_seconds: 7,
            updated_unix_seconds: 1_614_596_096, // 2021-03-01 10:54:56 UTC
            status_url: "/_anteroom/status?room=vaccini",
            paused: false,
        }
    }

    #[test]
    fn a_paused_room_says_so_and_an_open_one_hides_the_line() {
        let pages = Pages::new();
        let open = pages.waiting(Lang::En, &view());
        assert!(
            open.contains("id=\"anteroom-paused\" class=\"paused\" hidden>"),
            "{open}"
        );
        let paused = pages.waiting(
            Lang::It,
            &WaitingView {
                paused: true,
                ..view()
            },
        );
        assert!(
            paused.contains("id=\"anteroom-paused\" class=\"paused\">Gli ingressi sono sospesi"),
            "{paused}"
        );
    }

    /// The page up to its script (which carries every text, for the poller).
    fn markup(page: &str) -> &str {
        page.split("<script>").next().unwrap_or_default()
    }

    fn eta(lang: Lang, seconds: u64) -> String {
        let mut out = String::new();
        push_friendly_eta(&mut out, seconds, lang.texts());
        out
    }

    #[test]
    fn lang_follows_accept_language() {
        let cases = [
            (Some("it-IT,it;q=0.9,en;q=0.8"), Lang::It),
            (Some("en-US,it;q=0.5"), Lang::En),
            (Some("fr, it;q=0.1"), Lang::It),
            (Some("IT"), Lang::It),
            (Some("fr-FR,fr;q=0.9"), Lang::En),
            (Some("en;q=0.2, it;q=0.8"), Lang::It),
            (Some("it;q=0, en;q=0.1"), Lang::En),
            (Some("it;q=nope, en;q=0.1"), Lang::En),
            (Some("it;q=2"), Lang::En),
            (Some(""), Lang::En),
            (Some("💥;q=x"), Lang::En),
            (Some(";;,,=,q=,-"), Lang::En),
            (None, Lang::En),
        ];
        for (header, expected) in cases {
            assert_eq!(Lang::from_accept_language(header), expected, "{header:?}");
        }
        assert_eq!(Lang::It.code(), "it");
        assert_eq!(Lang::En.code(), "en");
    }

    #[test]
    fn waiting_page_shows_the_figures() {
        let pages = Pages::new();
        let english = pages.waiting(Lang::En, &view());
        assert!(english.contains("<html lang=\"en\">"));
        assert!(english.contains("<title>You are in the queue</title>"));
        assert!(english.contains("Your number in the queue: <"));
        assert!(english.contains("<strong id=\"anteroom-position\">42</strong>"));
        assert!(english.contains("People ahead of you: 41"));
        assert!(english.contains("Estimated wait: about 5 minutes"));
        assert!(english.contains("Updated at <span id=\"anteroom-updated\">10:54:56 UTC</span>"));
        assert!(english.contains(texts::ENGLISH.keep_open));
        assert!(english.contains("aria-live=\"polite\""));
        assert!(english.contains("<meta name=\"robots\" content=\"noindex\">"));
        assert!(
            english.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );

        let italian = pages.waiting(Lang::It, &view());
        assert!(italian.contains("<html lang=\"it\">"));
        assert!(italian.contains("<title>Sei in coda</title>"));
        assert!(italian.contains("La tua posizione: <"));
        assert!(italian.contains("Persone davanti a te: 41"));
        assert!(italian.contains("Attesa stimata: circa 5 minuti"));
        assert!(
            italian.contains("Aggiornato alle <span id=\"anteroom-updated\">10:54:56 UTC</span>")
        );
        assert!(italian.contains(
            "Tieni aperta questa pagina. Entrerai automaticamente. Non perderai il tuo posto."
        ));
    }

    #[test]
    fn waiting_page_has_the_no_script_refresh_and_the_poller() {
        let page = Pages::new().waiting(Lang::En, &view());
        assert!(page.contains("<noscript><meta http-equiv=\"refresh\" content=\"7\"></noscript>"));
        assert!(page.contains("data-refresh=\"7\""));
        assert!(page.contains("data-status-url=\"/_anteroom/status?room=vaccini\""));
        assert!(page.contains("credentials: 'same-origin'"));
        assert!(page.contains("location.reload()"));
        assert!(
            page.contains("\"eta_about\":\"about \""),
            "the script gets the text table"
        );
    }

    #[test]
    fn large_positions_are_grouped() {
        let pages = Pages::new();
        let view = WaitingView {
            position: Some(1_234_567),
            ..view()
        };
        assert!(
            pages
                .waiting(Lang::En, &view)
                .contains(">1,234,567</strong>")
        );
        assert!(
            pages
                .waiting(Lang::En, &view)
                .contains("People ahead of you: 1,234,566")
        );
        assert!(
            pages
                .waiting(Lang::It, &view)
                .contains(">1.234.567</strong>")
        );
        let mut out = String::new();
        for value in [0, 999, 1000, u64::MAX] {
            push_grouped_digits(&mut out, value, &texts::ENGLISH);
            out.push(' ');
        }
        assert_eq!(out, "0 999 1,000 18,446,744,073,709,551,615 ");
    }

    #[test]
    fn next_in_line_has_nobody_ahead() {
        let page = Pages::new().waiting(
            Lang::En,
            &WaitingView {
                position: Some(1),
                ..view()
            },
        );
        assert!(page.contains(texts::ENGLISH.ahead_none));
        assert!(!markup(&page).contains(texts::ENGLISH.ahead_before));
    }

    #[test]
    fn unknown_position_says_the_place_is_being_saved() {
        let pages = Pages::new();
        let unknown = WaitingView {
            position: None,
            eta_seconds: None,
            ..view()
        };
        let english = pages.waiting(Lang::En, &unknown);
        assert!(english.contains("We are saving your place, please keep this page open."));
        assert!(english.contains("<strong id=\"anteroom-position\"></strong>"));
        assert!(english.contains("<p id=\"anteroom-ahead\"></p>"));
        assert!(english.contains(texts::ENGLISH.eta_unknown));
        assert!(!markup(&english).contains("Your number in the queue"));
        let italian = pages.waiting(Lang::It, &unknown);
        assert!(italian.contains("Stiamo salvando il tuo posto, tieni aperta questa pagina."));
    }

    #[test]
    fn hostile_values_are_escaped() {
        let hostile = WaitingView {
            room: "<script>alert(1)</script>",
            status_url: "/_anteroom/status?room=\"><script>alert('x')</script>&",
            ..view()
        };
        let page = Pages::new().waiting(Lang::En, &hostile);
        assert!(!page.contains("<script>alert"), "{page}");
        assert_eq!(
            page.matches("<script>").count(),
            1,
            "only the page's own script"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(
            "data-status-url=\"/_anteroom/status?room=&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\""
        ));
    }

    #[test]
    fn pages_are_small_and_complete() {
        let pages = Pages::new();
        let long_room = "r".repeat(200);
        for lang in [Lang::It, Lang::En] {
            let worst = WaitingView {
                room: &long_room,
                position: Some(u64::MAX),
                eta_seconds: Some(u64::MAX),
                refresh_seconds: u64::MAX,
                updated_unix_seconds: u64::MAX,
                status_url: "/_anteroom/status?room=vaccini",
                paused: true,
            };
            for page in [
                pages.waiting(lang, &worst),
                pages.upstream_unavailable(lang, 5),
                pages.goodbye(lang),
            ] {
                assert!(page.len() < 30 * 1024, "{} bytes", page.len());
                assert!(!page.contains("{{"), "unfilled placeholder");
                assert!(
                    !page.contains("http://") && !page.contains("https://"),
                    "no external requests"
                );
                assert!(page.starts_with("<!DOCTYPE html>"));
            }
        }
    }

    #[test]
    fn upstream_unavailable_is_friendly_and_retries() {
        let pages = Pages::new();
        let english = pages.upstream_unavailable(Lang::En, 9);
        assert!(english.contains("<meta http-equiv=\"refresh\" content=\"9\">"));
        assert!(english.contains("<html lang=\"en\">"));
        assert!(english.contains(texts::ENGLISH.unavailable_retry));
        assert!(!english.to_lowercase().contains("error"));
        assert!(!english.contains("502") && !english.contains("504"));
        let italian = pages.upstream_unavailable(Lang::It, 9);
        assert!(italian.contains("<html lang=\"it\">"));
        assert!(italian.contains(texts::ITALIAN.unavailable_lead));
    }

    #[test]
    fn the_small_pages_speak_both_languages() {
        let pages = Pages::new();
        for (lang, texts) in [(Lang::En, &texts::ENGLISH), (Lang::It, &texts::ITALIAN)] {
            assert!(pages.closed(lang).contains(texts.closed_lead));
            let leave = pages.confirm_leave(lang, "vaccini");
            assert!(leave.contains(texts.leave_button));
            assert!(
                leave.contains(r#"<form method="post" action="/_anteroom/leave?room=vaccini">"#)
            );
            let too_many = pages.too_many_requests(lang);
            let too_many = std::str::from_utf8(&too_many).unwrap();
            assert!(too_many.contains(texts.too_many_lead));
            // Sent to every rejected request: kept tiny, no stylesheet.
            assert!(too_many.len() < 512, "{}", too_many.len());
        }
        assert!(!Pages::new().confirm_leave(Lang::En, "<x>").contains("<x>"));
    }

    #[test]
    fn goodbye_says_the_place_went_to_the_next_person() {
        let pages = Pages::new();
        let english = pages.goodbye(Lang::En);
        assert!(english.contains("<html lang=\"en\">"));
        assert!(english.contains(texts::ENGLISH.goodbye_lead));
        assert!(
            !english.contains("http-equiv=\"refresh\""),
            "no reload back into the queue"
        );
        let italian = pages.goodbye(Lang::It);
        assert!(italian.contains("<html lang=\"it\">"));
        assert!(italian.contains(texts::ITALIAN.goodbye_lead));
    }

    #[test]
    fn friendly_eta_ranges() {
        let cases = [
            (0, "less than a minute", "meno di un minuto"),
            (30, "less than a minute", "meno di un minuto"),
            (59, "less than a minute", "meno di un minuto"),
            (60, "about 1 minute", "circa 1 minuto"),
            (300, "about 5 minutes", "circa 5 minuti"),
            (599, "about 10 minutes", "circa 10 minuti"),
            (600, "about 10–15 minutes", "circa 10–15 minuti"),
            (700, "about 10–15 minutes", "circa 10–15 minuti"),
            (1799, "about 25–30 minutes", "circa 25–30 minuti"),
            (2400, "about 40–50 minutes", "circa 40–50 minuti"),
            (3599, "about 50–60 minutes", "circa 50–60 minuti"),
            (3600, "about 1–2 hours", "circa 1–2 ore"),
            (3600 * 3, "about 3 hours", "circa 3 ore"),
            (
                u64::MAX,
                "about 5124095576030431 hours",
                "circa 5124095576030431 ore",
            ),
        ];
        for (seconds, english, italian) in cases {
            assert_eq!(eta(Lang::En, seconds), english, "{seconds} s");
            assert_eq!(eta(Lang::It, seconds), italian, "{seconds} s");
        }
    }

    #[test]
    fn texts_are_present_and_need_no_escaping() {
        for texts in [&texts::ITALIAN, &texts::ENGLISH] {
            for (name, value) in texts.entries() {
                assert!(
                    !value.contains(['<', '>', '&', '"', '\'']),
                    "{} {name}: {value:?}",
                    texts.code
                );
                assert!(!value.is_empty(), "{} {name} is empty", texts.code);
            }
        }
    }

    #[test]
    fn texts_table_cannot_close_the_script() {
        let mut out = String::new();
        push_js_string(&mut out, "</script>\"\\\u{2028}\n");
        assert_eq!(out, "\"\\u003c/script\\u003e\\\"\\\\\\u2028\\u000a\"");
    }

    #[test]
    fn escaping_keeps_unicode() {
        let mut out = String::new();
        push_escaped(&mut out, "Sanità & “vaccini” <ok>");
        assert_eq!(out, "Sanità &amp; “vaccini” &lt;ok&gt;");
    }
}
