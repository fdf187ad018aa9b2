//! The site's HTML pages: home, booking form, not found and overloaded, in
//! one frame with large text and no external requests.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::bookings::{MAX_NAME_CHARS, SLOTS};
use super::{Body, html};

/// What a melting site answers when a request timed out inside it.
pub(super) fn overloaded() -> Response<Body> {
    let mut response = html(
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "Servizio non disponibile / Service unavailable",
            "<h1>Servizio non disponibile / Service unavailable</h1><p>Riprova più tardi. / Please try again later.</p>",
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    response
}

pub(super) fn home_page() -> String {
    page(
        "Prenotazioni vaccini / Vaccine bookings",
        "<h1>Prenotazioni vaccini<br><span lang=\"en\">Vaccine bookings</span></h1>\n\
         <p>Questo è il sito di prenotazione dimostrativo che anteroom protegge.<br>\
         <span lang=\"en\">This is the demo booking site that anteroom protects.</span></p>\n\
         <p><a class=\"button\" href=\"/prenota\">Prenota / <span lang=\"en\">Book a vaccination</span></a></p>",
    )
}

pub(super) fn booking_page(remaining: &[u32; SLOTS.len()]) -> String {
    let mut choices = String::new();
    for ((id, label), remaining) in SLOTS.iter().zip(remaining) {
        let disabled = if *remaining == 0 { " disabled" } else { "" };
        choices.push_str(&format!(
            "<label><input type=\"radio\" name=\"slot\" value=\"{}\" required{disabled}> {} ({remaining} liberi / left)</label>\n",
            escape(id),
            escape(label),
        ));
    }
    page(
        "Sei dentro! / You're in!",
        &format!(
            "<h1>Sei dentro!<br><span lang=\"en\">You’re in!</span></h1>\n\
             <p>Scegli un orario e prenota.<br><span lang=\"en\">Choose a time and book.</span></p>\n\
             <form method=\"post\" action=\"/api/bookings\">\n\
             <p><label for=\"name\">Nome / <span lang=\"en\">Name</span></label><br>\
             <input id=\"name\" name=\"name\" required maxlength=\"{MAX_NAME_CHARS}\" autocomplete=\"name\"></p>\n\
             <fieldset><legend>Orario / <span lang=\"en\">Time</span></legend>\n{choices}</fieldset>\n\
             <p><button type=\"submit\">Prenota / <span lang=\"en\">Book</span></button></p>\n\
             </form>\n\
             <form method=\"post\" action=\"/_anteroom/leave?room=demo\"><button>Esci / <span lang=\"en\">Leave (frees your place for the next visitor)</span></button></form>"
        ),
    )
}

pub(super) fn not_found_page() -> String {
    page(
        "Pagina non trovata / Page not found",
        "<h1>Pagina non trovata<br><span lang=\"en\">Page not found</span></h1>\n<p><a href=\"/\">Home</a></p>",
    )
}

/// The shared page frame: large text, strong contrast, no external requests.
pub(super) fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"it\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{main}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

const STYLE: &str = "html{font-size:137.5%}body{margin:0;padding:1rem;background:#fff;color:#111;\
font-family:system-ui,sans-serif;line-height:1.5;overflow-wrap:break-word}main{max-width:34rem;margin:0 auto}\
h1{font-size:1.6rem;line-height:1.2}span[lang=en]{color:#444}a{color:#0b3d91;font-weight:700}\
input,button{font:inherit}input[type=radio]{width:1.2em;height:1.2em}label{display:block;margin:.25rem 0}\
fieldset{border:2px solid #0b3d91;border-radius:.5rem}button,.button{display:inline-block;padding:.5rem 1rem;\
background:#0b3d91;color:#fff;border:0;border-radius:.5rem;text-decoration:none}";

pub(super) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            character => out.push(character),
        }
    }
    out
}
