//! Every word the visitor reads, one plain file per language.
//!
//! A language file is flat TOML, `key = "text"`, named by its code:
//! `lang/en.toml` and `lang/it.toml` are built in (embedded at build time);
//! an operator adds a language, or rewords one of ours, with a file of the
//! same form in their `[pages] dir` under `lang/`. Values are plain text: the
//! pages escape them once, when they are compiled at startup.
//!
//! Rules, checked when the file is read (so `--check` reports them):
//! - every key is one of [`Texts::KEYS`]; an unknown key is a typo;
//! - a new language has every key; a file for a built-in language may hold
//!   only the keys it changes (the rest stay ours);
//! - `title_position` holds `{position}`; `text_direction` is `ltr` or `rtl`;
//! - `weekday_names` holds 7 names and `month_names` 12, separated by
//!   commas; the launch event's sentences hold their marks (`{time}`,
//!   `{when}`, `{place}` and `{size}`; `date_format` `{day}` and `{month}`).

/// Replaced by the visitor's number in `title_position`.
pub(super) const POSITION_MARK: &str = "{position}";

/// The built-in languages, embedded at build time. English first: it is
/// the language of a visitor whose browser asks for none we speak.
pub(super) const BUILT_IN: [(&str, &str); 2] = [
    ("en", include_str!("lang/en.toml")),
    ("it", include_str!("lang/it.toml")),
];

/// Declares [`Texts`] with one field per key, and the key list, from one
/// list of names: adding a word is one line here plus one per language file.
macro_rules! texts {
    ($($key:ident),* $(,)?) => {
        /// One language's words, by key (see the language files).
        #[derive(Debug, Clone, Default)]
        pub(crate) struct Texts {
            $(pub $key: String,)*
        }

        impl Texts {
            /// Every key a language file may (and a new language must) hold.
            pub(crate) const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            /// The text called `key`.
            pub(crate) fn get(&self, key: &str) -> Option<&str> {
                match key {
                    $(stringify!($key) => Some(&self.$key),)*
                    _ => None,
                }
            }

            fn slot(&mut self, key: &str) -> Option<&mut String> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)*
                    _ => None,
                }
            }

            /// The same table with `change` applied to every text.
            pub(crate) fn map(&self, change: impl Fn(&str) -> String) -> Texts {
                Texts { $($key: change(&self.$key),)* }
            }
        }
    };
}

texts! {
    language_name,
    text_direction,
    language_switch_label,
    digit_separator,
    title,
    title_position,
    queue_label,
    position_before,
    position_unknown,
    ahead_before,
    ahead_none,
    eta_before,
    eta_unknown,
    eta_paused,
    eta_less_than_a_minute,
    eta_about,
    minute,
    minutes,
    hours,
    updated_before,
    keep_open,
    no_refresh,
    paused,
    closed_waiting,
    site_trouble,
    turn_title,
    turn_lead,
    turn_link,
    unavailable_title,
    unavailable_lead,
    unavailable_retry,
    unavailable_place,
    unavailable_link,
    goodbye_title,
    goodbye_lead,
    goodbye_link,
    closed_title,
    closed_lead,
    closed_retry,
    closed_link,
    too_many_title,
    too_many_lead,
    leave_title,
    leave_lead,
    leave_button,
    receipt_title,
    receipt_label,
    receipt_queued,
    receipt_retrying,
    receipt_processing,
    receipt_done,
    receipt_refused,
    receipt_failed,
    not_open_title,
    not_open_keep,
    opens_line,
    date_format,
    weekday_names,
    month_names,
    countdown_before,
    countdown_now,
    second,
    seconds,
    hour,
    day,
    days,
    pre_queue_from_line,
    same_chance,
    pre_queue_ticket_before,
    pre_queue_size_before,
    draw_place_line,
    draw_check,
    draw_link,
}

impl Texts {
    /// Reads one language file. `base`: the language's built-in words,
    /// which the file may change key by key; `None` for a new language,
    /// whose file must hold every key. Errors name the key.
    pub(crate) fn parse(text: &str, base: Option<&Texts>) -> Result<Texts, String> {
        let table: toml::Table = toml::from_str(text).map_err(|error| {
            let message = error.to_string();
            message.trim_end().replace('\n', " ")
        })?;
        let mut texts = base.cloned().unwrap_or_default();
        for (key, value) in table {
            let Some(slot) = texts.slot(&key) else {
                return Err(format!("{key}: not a key of the language files"));
            };
            let toml::Value::String(value) = value else {
                return Err(format!("{key}: must be a string"));
            };
            if value.trim().is_empty() {
                return Err(format!("{key}: must not be empty"));
            }
            *slot = value;
        }
        if base.is_none()
            && let Some(missing) = Texts::KEYS
                .iter()
                .find(|key| texts.get(key).is_none_or(str::is_empty))
        {
            return Err(format!(
                "{missing}: missing (a new language needs every key; see the built-in en.toml)"
            ));
        }
        if !texts.title_position.contains(POSITION_MARK) {
            return Err(format!("title_position: must contain {POSITION_MARK}"));
        }
        if !matches!(texts.text_direction.as_str(), "ltr" | "rtl") {
            return Err("text_direction: must be \"ltr\" or \"rtl\"".to_owned());
        }
        for (key, count) in [("weekday_names", 7), ("month_names", 12)] {
            let names = texts.get(key).unwrap_or_default();
            if names
                .split(',')
                .filter(|name| !name.trim().is_empty())
                .count()
                != count
            {
                return Err(format!(
                    "{key}: must hold {count} names, separated by commas"
                ));
            }
        }
        for (key, marks) in [
            ("opens_line", &["{time}"][..]),
            ("date_format", &["{day}", "{month}"][..]),
            ("pre_queue_from_line", &["{when}"][..]),
            ("same_chance", &["{time}"][..]),
            ("draw_place_line", &["{place}", "{size}"][..]),
        ] {
            let text = texts.get(key).unwrap_or_default();
            if let Some(missing) = marks.iter().find(|mark| !text.contains(**mark)) {
                return Err(format!("{key}: must contain {missing}"));
            }
        }
        Ok(texts)
    }
}

/// Whether `code` can name a language file: a primary language subtag,
/// two or three lowercase letters (`en`, `it`, `fur`). Regions are not
/// told apart: `Accept-Language: pt-BR` picks `pt`.
pub(super) fn is_language_code(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|byte| byte.is_ascii_lowercase())
}
