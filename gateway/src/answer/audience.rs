//! Who an answer is for, read from the request before it is consumed: the
//! form they take (`Accept`), their language, the address they asked for.

use http::Uri;
use http::header::{self, HeaderMap, HeaderValue};

use crate::page::{Lang, Pages, Reader};

/// Which form of answer the client takes, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefers {
    /// Asks for JSON and not for HTML (scripts, apps, the page's own calls).
    Json,
    /// Asks for HTML (browsers).
    Html,
    /// Says neither (curl, many scripts).
    Either,
}

/// Who an answer is for: the form they take, their language and the
/// address they asked for (its query is kept in the pages' links). Taken
/// from the request before it is consumed, so an answer can be rendered
/// after the request went upstream.
#[derive(Debug, Clone)]
pub struct Audience {
    prefers: Prefers,
    lang: LangSource,
    uri: Uri,
}

/// Where the visitor's language comes from. Reading it (the language
/// cookie, then `Accept-Language`) is left until a page is rendered: most
/// answers are JSON or the site's own, and never need it.
#[derive(Debug, Clone)]
enum LangSource {
    Read(Lang),
    /// The request's `Cookie` header (when it has one) and its
    /// `Accept-Language`: clones share the request's bytes.
    Later {
        cookie: Option<HeaderValue>,
        accept_language: Option<HeaderValue>,
    },
}

impl Audience {
    pub fn of(pages: &Pages, headers: &HeaderMap, uri: &Uri) -> Audience {
        let prefers = prefers(headers);
        let mut cookies = headers.get_all(header::COOKIE).iter();
        let (cookie, more_cookies) = (cookies.next(), cookies.next().is_some());
        let lang = match prefers {
            // A client that takes only JSON never sees a page.
            Prefers::Json => LangSource::Read(Lang::default()),
            // Several `Cookie` headers (not from a browser): read now
            // rather than keep them all.
            Prefers::Html | Prefers::Either if more_cookies => {
                LangSource::Read(pages.language_for(headers))
            }
            Prefers::Html | Prefers::Either => LangSource::Later {
                cookie: cookie.cloned(),
                accept_language: headers.get(header::ACCEPT_LANGUAGE).cloned(),
            },
        };
        Audience {
            prefers,
            lang,
            uri: uri.clone(),
        }
    }

    /// The form of answer the client takes.
    pub fn prefers(&self) -> Prefers {
        self.prefers
    }

    pub(super) fn reader(&self, pages: &Pages) -> Reader<'_> {
        let lang = match &self.lang {
            LangSource::Read(lang) => *lang,
            LangSource::Later {
                cookie,
                accept_language,
            } => pages.language_from(cookie.as_ref(), accept_language.as_ref()),
        };
        Reader {
            lang,
            query: self.uri.query().unwrap_or_default(),
        }
    }

    /// Pages unless the client asks for JSON only.
    pub(super) fn takes_pages(&self) -> bool {
        self.prefers != Prefers::Json
    }

    /// Bookings answer JSON unless the client asks for HTML (a form post).
    pub(super) fn takes_receipt_pages(&self) -> bool {
        self.prefers == Prefers::Html
    }
}

/// The form of answer `Accept` asks for.
pub fn prefers(headers: &HeaderMap) -> Prefers {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let html = accept.contains("text/html");
    if accept.contains("application/json") && !html {
        Prefers::Json
    } else if html {
        Prefers::Html
    } else {
        Prefers::Either
    }
}
