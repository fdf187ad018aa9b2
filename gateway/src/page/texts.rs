//! Every word the visitor reads, in Italian and English.
//!
//! Invariant (tested): no text contains `<`, `>`, `&`, `"` or `'`, so the
//! renderer can concatenate them into HTML without escaping at request time.
//! Use the typographic apostrophe `’` in prose.

/// One language's words. The waiting page's script gets the same table (as a
/// JSON object baked in at startup), so Rust and JavaScript never disagree on
/// wording; only the small ETA bucketing function is written twice.
#[derive(Debug)]
pub(super) struct Texts {
    /// The `lang` attribute and the locale the script formats clock times in.
    pub code: &'static str,
    /// Thousands separator for queue positions: 12,345 or 12.345.
    pub digit_separator: &'static str,
    pub title: &'static str,
    pub queue_label: &'static str,
    pub position_before: &'static str,
    pub position_unknown: &'static str,
    pub ahead_before: &'static str,
    pub ahead_none: &'static str,
    pub eta_before: &'static str,
    pub eta_unknown: &'static str,
    pub eta_less_than_a_minute: &'static str,
    pub eta_about: &'static str,
    pub minute: &'static str,
    pub minutes: &'static str,
    pub hours: &'static str,
    pub updated_before: &'static str,
    pub keep_open: &'static str,
    pub unavailable_title: &'static str,
    pub unavailable_lead: &'static str,
    pub unavailable_retry: &'static str,
    pub unavailable_link: &'static str,
    pub goodbye_title: &'static str,
    pub goodbye_lead: &'static str,
    pub goodbye_link: &'static str,
}

pub(super) const ITALIAN: Texts = Texts {
    code: "it",
    digit_separator: ".",
    title: "Sei in coda",
    queue_label: "Coda:",
    position_before: "La tua posizione: ",
    position_unknown: "Stiamo salvando il tuo posto, tieni aperta questa pagina.",
    ahead_before: "Persone davanti a te: ",
    ahead_none: "Nessuno è davanti a te: tocca a te tra pochissimo.",
    eta_before: "Attesa stimata: ",
    eta_unknown: "Stiamo calcolando quanto durerà l’attesa.",
    eta_less_than_a_minute: "meno di un minuto",
    eta_about: "circa ",
    minute: "minuto",
    minutes: "minuti",
    hours: "ore",
    updated_before: "Aggiornato alle ",
    keep_open: "Tieni aperta questa pagina. Entrerai automaticamente. Non perderai il tuo posto.",
    unavailable_title: "Un momento, per favore",
    unavailable_lead: "Il sito delle prenotazioni non risponde in questo momento.",
    unavailable_retry: "Questa pagina riproverà da sola tra pochi secondi. Non devi fare nulla.",
    unavailable_link: "Riprova adesso",
    goodbye_title: "Hai lasciato il sito",
    goodbye_lead: "Il tuo posto è passato alla prossima persona in coda. Grazie.",
    goodbye_link: "Torna all’inizio",
};

pub(super) const ENGLISH: Texts = Texts {
    code: "en",
    digit_separator: ",",
    title: "You are in the queue",
    queue_label: "Queue:",
    position_before: "Your number in the queue: ",
    position_unknown: "We are saving your place, please keep this page open.",
    ahead_before: "People ahead of you: ",
    ahead_none: "Nobody is ahead of you: it is almost your turn.",
    eta_before: "Estimated wait: ",
    eta_unknown: "We are working out how long the wait will be.",
    eta_less_than_a_minute: "less than a minute",
    eta_about: "about ",
    minute: "minute",
    minutes: "minutes",
    hours: "hours",
    updated_before: "Updated at ",
    keep_open: "Keep this page open. You will be let in automatically. You will not lose your place.",
    unavailable_title: "Just a moment, please",
    unavailable_lead: "The booking site is not answering right now.",
    unavailable_retry: "This page will try again by itself in a few seconds. You do not need to do anything.",
    unavailable_link: "Try again now",
    goodbye_title: "You have left the site",
    goodbye_lead: "Your place has gone to the next person in the queue. Thank you.",
    goodbye_link: "Back to the start",
};

impl Texts {
    /// Every text with its key, for template baking, the script's table and tests.
    pub(super) fn entries(&self) -> [(&'static str, &'static str); 24] {
        [
            ("code", self.code),
            ("digit_separator", self.digit_separator),
            ("title", self.title),
            ("queue_label", self.queue_label),
            ("position_before", self.position_before),
            ("position_unknown", self.position_unknown),
            ("ahead_before", self.ahead_before),
            ("ahead_none", self.ahead_none),
            ("eta_before", self.eta_before),
            ("eta_unknown", self.eta_unknown),
            ("eta_less_than_a_minute", self.eta_less_than_a_minute),
            ("eta_about", self.eta_about),
            ("minute", self.minute),
            ("minutes", self.minutes),
            ("hours", self.hours),
            ("updated_before", self.updated_before),
            ("keep_open", self.keep_open),
            ("unavailable_title", self.unavailable_title),
            ("unavailable_lead", self.unavailable_lead),
            ("unavailable_retry", self.unavailable_retry),
            ("unavailable_link", self.unavailable_link),
            ("goodbye_title", self.goodbye_title),
            ("goodbye_lead", self.goodbye_lead),
            ("goodbye_link", self.goodbye_link),
        ]
    }
}
