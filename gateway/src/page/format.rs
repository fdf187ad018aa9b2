//! Small writers the pages share: HTML escaping, JavaScript string
//! literals, grouped digits, the clock, the friendly waiting time, and a
//! launch event's times, place and countdown.
//!
//! `waiting.js` mirrors the ones that also run in the browser (`groupDigits`,
//! `aheadLine`, `etaLine`, `friendlyEta`, `opensLine`, `countdownLine`…):
//! same buckets, same words.

use std::fmt::Write as _;

use super::WallClock;
use super::texts::Texts;

/// Escapes `value` for HTML text and quoted attribute values.
pub(super) fn push_escaped(out: &mut String, value: &str) {
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

pub(super) fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped(&mut out, value);
    out
}

/// A JSON string literal that cannot end its `<script>` element.
pub(super) fn push_js_string(out: &mut String, value: &str) {
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

pub(super) fn push_number(out: &mut String, value: u64) {
    let _ = write!(out, "{value}");
}

/// `HH:MM:SS UTC`; the script shows it in the visitor's own time zone.
pub(super) fn push_utc_clock(out: &mut String, unix_seconds: u64) {
    let of_day = unix_seconds % 86_400;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
}

/// 12345 → `12,345` (en) or `12.345` (it). Mirrors `groupDigits`.
pub(super) fn push_grouped_digits(out: &mut String, value: u64, texts: &Texts) {
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
            out.push_str(&texts.digit_separator);
        }
        out.push(char::from(*digit));
    }
}

/// The tab's title while waiting: `title_position` with the number in it.
/// Mirrors `titleFor`.
pub(super) fn push_title_with_position(out: &mut String, position: u64, texts: &Texts) {
    let (before, after) = texts
        .title_position
        .split_once(super::texts::POSITION_MARK)
        .unwrap_or((&texts.title_position, ""));
    out.push_str(before);
    push_grouped_digits(out, position, texts);
    out.push_str(after);
}

/// Mirrors `aheadLine`.
pub(super) fn push_ahead_line(out: &mut String, position: u64, texts: &Texts) {
    let ahead = position.saturating_sub(1);
    if ahead == 0 {
        out.push_str(&texts.ahead_none);
    } else {
        out.push_str(&texts.ahead_before);
        push_grouped_digits(out, ahead, texts);
    }
}

/// Mirrors `etaLine`.
pub(super) fn push_eta_line(out: &mut String, eta_seconds: Option<u64>, texts: &Texts) {
    match eta_seconds {
        None => out.push_str(&texts.eta_unknown),
        Some(seconds) => {
            out.push_str(&texts.eta_before);
            push_friendly_eta(out, seconds, texts);
        }
    }
}

/// A wait as a range a person can hold on to; estimates move, so the coarser
/// the longer. Mirrors `friendlyEta`.
///
/// - under a minute: "less than a minute"
/// - under 10 minutes: "about N minutes" (rounded)
/// - under 30 minutes: 5-minute ranges, "about 10–15 minutes"
/// - under an hour: 10-minute ranges, "about 30–40 minutes"
/// - under 2 hours: "about 1–2 hours"; then "about N hours" (rounded)
pub(super) fn push_friendly_eta(out: &mut String, seconds: u64, texts: &Texts) {
    if seconds < 60 {
        out.push_str(&texts.eta_less_than_a_minute);
    } else if seconds < 600 {
        let minutes = (seconds + 30) / 60;
        let unit = if minutes == 1 {
            &texts.minute
        } else {
            &texts.minutes
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

/// `pattern` with each `{mark}` that `fill` knows written by it (it returns
/// whether it knew the mark); any other braces are kept as they are.
/// Mirrors `fill` in waiting.js.
pub(super) fn push_marked(
    out: &mut String,
    pattern: &str,
    mut fill: impl FnMut(&str, &mut String) -> bool,
) {
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').filter(|end| {
            after[..*end]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        });
        match end {
            Some(end) if fill(&after[..end], out) => rest = &after[end + 1..],
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// `12:00`: a time of day on a 24-hour clock. Mirrors `clockTime`.
pub(super) fn push_clock_time(out: &mut String, at: WallClock) {
    let _ = write!(out, "{:02}:{:02}", at.hour, at.minute);
}

/// `Tuesday 1 March` (by `date_format`). Mirrors `dateText`.
pub(super) fn push_date(out: &mut String, at: WallClock, texts: &Texts) {
    push_marked(out, &texts.date_format, |mark, out| {
        match mark {
            "weekday" => out.push_str(nth_name(&texts.weekday_names, at.weekday)),
            "day" => push_number(out, u64::from(at.day)),
            "month" => out.push_str(nth_name(&texts.month_names, at.month.saturating_sub(1))),
            _ => return false,
        }
        true
    });
}

/// The `index`th (from 0) of a comma-separated list of names (checked to
/// be complete when the language file is read).
fn nth_name(names: &str, index: u8) -> &str {
    names
        .split(',')
        .nth(usize::from(index))
        .map_or("", str::trim)
}

/// `Opens at 12:00 (Tuesday 1 March).` Mirrors `opensLine`.
pub(super) fn push_opens_line(out: &mut String, opens_at: WallClock, texts: &Texts) {
    push_marked(out, &texts.opens_line, |mark, out| {
        match mark {
            "time" => push_clock_time(out, opens_at),
            "date" => push_date(out, opens_at, texts),
            _ => return false,
        }
        true
    });
}

/// `From 11:00 this page gives you a ticket…`, with the date when the
/// pre-queue opens on another day than the room. Mirrors `preQueueFromLine`.
pub(super) fn push_pre_queue_from_line(
    out: &mut String,
    from: WallClock,
    opens_at: WallClock,
    texts: &Texts,
) {
    push_marked(out, &texts.pre_queue_from_line, |mark, out| {
        if mark != "when" {
            return false;
        }
        push_clock_time(out, from);
        if (from.month, from.day) != (opens_at.month, opens_at.day) {
            out.push_str(" (");
            push_date(out, from, texts);
            out.push(')');
        }
        true
    });
}

/// Arriving early gives no advantage… Mirrors `sameChance`.
pub(super) fn push_same_chance(out: &mut String, opens_at: WallClock, texts: &Texts) {
    push_marked(out, &texts.same_chance, |mark, out| {
        if mark != "time" {
            return false;
        }
        push_clock_time(out, opens_at);
        true
    });
}

/// `Your place in the draw: 17 of 1,234.` Mirrors `drawPlaceLine`.
pub(super) fn push_draw_place_line(out: &mut String, place: u64, size: u64, texts: &Texts) {
    push_marked(out, &texts.draw_place_line, |mark, out| {
        match mark {
            "place" => push_grouped_digits(out, place, texts),
            "size" => push_grouped_digits(out, size, texts),
            _ => return false,
        }
        true
    });
}

/// `Opens in: 1 hour 5 minutes`, or `Opening now…` once the count is
/// down. Mirrors `countdownLine`.
pub(super) fn push_countdown_line(out: &mut String, seconds: u64, texts: &Texts) {
    if seconds == 0 {
        out.push_str(&texts.countdown_now);
        return;
    }
    out.push_str(&texts.countdown_before);
    push_time_left(out, seconds, texts);
}

/// What is left of a countdown in its two largest units, the smaller left
/// out when it is zero: `2 days 3 hours`, `1 hour 5 minutes`, `4 minutes
/// 30 seconds`, `12 seconds`. A live countdown shows seconds only in its
/// last hour. Mirrors `timeLeft`.
pub(super) fn push_time_left(out: &mut String, seconds: u64, texts: &Texts) {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;
    let (large, small) = if seconds >= DAY {
        (
            (seconds / DAY, &texts.day, &texts.days),
            (seconds % DAY / HOUR, &texts.hour, &texts.hours),
        )
    } else if seconds >= HOUR {
        (
            (seconds / HOUR, &texts.hour, &texts.hours),
            (seconds % HOUR / MINUTE, &texts.minute, &texts.minutes),
        )
    } else {
        (
            (seconds / MINUTE, &texts.minute, &texts.minutes),
            (seconds % MINUTE, &texts.second, &texts.seconds),
        )
    };
    let mut first = true;
    for (count, one, many) in [large, small] {
        if count == 0 {
            continue;
        }
        if !first {
            out.push(' ');
        }
        first = false;
        let _ = write!(out, "{count} {}", if count == 1 { one } else { many });
    }
}
