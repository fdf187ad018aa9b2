//! Which language a visitor reads: the one they chose with the switch
//! (a cookie), else the best their browser asks for.

use http::HeaderMap;
use http::header;
use http::header::HeaderValue;

use super::{LANG_COOKIE, Lang, Pages};

impl Pages {
    /// The language called `code` (`"it"`), if the pages speak it.
    pub fn lang(&self, code: &str) -> Option<Lang> {
        self.languages
            .iter()
            .position(|language| language.code == code)
            .map(|index| Lang(index as u16))
    }

    /// The language's code: `"it"`, `"en"`...
    pub fn code(&self, lang: Lang) -> &str {
        &self.language(lang).code
    }

    /// The visitor's language: the one they chose with the switch (the
    /// [`LANG_COOKIE`]), else the best their browser asks for.
    pub fn language_for(&self, headers: &HeaderMap) -> Lang {
        crate::cookies::values(headers, LANG_COOKIE)
            .find_map(|code| self.lang(code))
            .unwrap_or_else(|| self.from_accept_language(accept_language(headers)))
    }

    /// [`Pages::language_for`] from a request's one `Cookie` header and its
    /// `Accept-Language`, kept apart from the request.
    pub fn language_from(
        &self,
        cookie: Option<&HeaderValue>,
        accept_language: Option<&HeaderValue>,
    ) -> Lang {
        cookie
            .and_then(|cookie| {
                crate::cookies::values_in(cookie, LANG_COOKIE).find_map(|code| self.lang(code))
            })
            .unwrap_or_else(|| {
                self.from_accept_language(accept_language.and_then(|value| value.to_str().ok()))
            })
    }

    /// Picks a language from an `Accept-Language` header value.
    ///
    /// The language spoken here with the highest q-value wins (ties: the
    /// first listed), matched by primary subtag (`it-CH` is `it`); `*`
    /// counts as English. Malformed entries are skipped, and anything
    /// unusable, or no header, gives English.
    pub fn from_accept_language(&self, header: Option<&str>) -> Lang {
        // Bounds the work a hostile header can cause; real browsers send < 10.
        const MAX_ENTRIES: usize = 32;
        const ENGLISH: Lang = Lang(0);
        let Some(header) = header else {
            return ENGLISH;
        };
        let mut best: Option<(Lang, f32)> = None;
        for entry in header.split(',').take(MAX_ENTRIES) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            let lang = if primary == "*" {
                ENGLISH
            } else {
                match self
                    .languages
                    .iter()
                    .position(|language| language.code.eq_ignore_ascii_case(primary))
                {
                    Some(index) => Lang(index as u16),
                    None => continue,
                }
            };
            let Some(quality) = quality(parts) else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(_, best_quality)| quality > best_quality) {
                best = Some((lang, quality));
            }
        }
        best.map_or(ENGLISH, |(lang, _)| lang)
    }
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

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
}
