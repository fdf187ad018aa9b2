//! Which room protects a request path.
//!
//! Matching is done on a normalised form of the path (percent-decoded until
//! nothing changes, `;` parameters dropped, slashes collapsed, dot segments
//! resolved, ASCII-lowercased) against the normalised room prefixes, and on
//! the raw path lowercased against the prefixes as written: a request is
//! protected if either form falls in a room, so that spelling a path
//! differently (for this gateway, or for an upstream that decodes twice or
//! drops `;` parameters) never walks around a room.
//!
//! A request path that has no one normal form is refused instead
//! ([`normalise_request_path`], [`Unnormalisable`]): what it names depends
//! on how the site behind decodes it, and a site that decodes more
//! leniently than we do (one more layer of escapes, overlong UTF-8, trimmed
//! white space, compatibility characters folded to ASCII) could read a room's
//! path in it. None of these is in a URL a browser makes from a link.

use anteroom_config::Room;
use unicode_normalization::UnicodeNormalization;

/// Layers of percent-encoding undone at most. Real paths have one; a second
/// is only ever an attempt to slip past a decoder.
const MAX_DECODE_LAYERS: usize = 4;

/// Why a request path is refused rather than matched: what it names
/// depends on how the site behind decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unnormalisable {
    /// Still escaped after [`MAX_DECODE_LAYERS`] layers of decoding.
    #[error("the path is percent-encoded more than {MAX_DECODE_LAYERS} times over")]
    TooManyLayers,
    /// Escapes that decode to bytes that are not UTF-8, overlong encodings
    /// (`%c0%af` for `/`) included.
    #[error("the path's escapes do not decode to UTF-8")]
    NotUtf8,
    /// A control character (NUL, TAB, CR, LF, DEL, C1), raw or escaped.
    #[error("the path holds a control character")]
    ControlCharacter,
    /// A segment that begins or ends with white space (`/%20prenota`),
    /// which a site that trims would read without it.
    #[error("a path segment begins or ends with white space")]
    PaddedSegment,
    /// A character whose compatibility form (NFKC) holds an ASCII one: a
    /// fullwidth letter, a ligature, the Kelvin sign, a superscript digit.
    #[error("the path holds a character that stands for an ASCII one (such as a fullwidth letter)")]
    CompatibilityCharacter,
}

/// The rooms' prefixes in both forms, prepared once.
#[derive(Debug, Clone)]
pub struct RoomMatcher {
    rooms: Vec<Prefixes>,
}

#[derive(Debug, Clone)]
struct Prefixes {
    paths: Vec<String>,
    exclude: Vec<String>,
    normalised_paths: Vec<String>,
    normalised_exclude: Vec<String>,
}

impl RoomMatcher {
    pub fn new(rooms: &[Room]) -> RoomMatcher {
        let normalised = |prefixes: &[String]| prefixes.iter().map(|p| normalise(p)).collect();
        RoomMatcher {
            rooms: rooms
                .iter()
                .map(|room| Prefixes {
                    paths: room.paths.clone(),
                    exclude: room.exclude.clone(),
                    normalised_paths: normalised(&room.paths),
                    normalised_exclude: normalised(&room.exclude),
                })
                .collect(),
        }
    }

    /// The index of the room protecting `raw_path`, if any.
    pub fn room_for(&self, raw_path: &str) -> Option<usize> {
        self.room_of(raw_path, &normalise(raw_path))
    }

    /// The index of the room protecting `raw_path`, whose normal form the
    /// caller has already made ([`normalise_request_path`]).
    pub fn room_of(&self, raw_path: &str, normalised: &str) -> Option<usize> {
        let raw = raw_path.to_ascii_lowercase();
        self.rooms.iter().position(|room| {
            protects(&room.normalised_paths, &room.normalised_exclude, normalised)
                || protects(&room.paths, &room.exclude, &raw)
        })
    }
}

/// The index of the room protecting `raw_path`, if any (prepares the
/// prefixes on every call; the gateway keeps a [`RoomMatcher`]).
pub fn room_for(rooms: &[Room], raw_path: &str) -> Option<usize> {
    RoomMatcher::new(rooms).room_for(raw_path)
}

fn protects(paths: &[String], exclude: &[String], path: &str) -> bool {
    paths.iter().any(|prefix| path.starts_with(prefix.as_str()))
        && !exclude
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
}

/// Percent-decodes, repeatedly up to a few layers (invalid UTF-8 becomes
/// U+FFFD), drops `;` parameters, treats `\` as `/`, collapses
/// repeated slashes, resolves `.` and `..`, lowercases ASCII. Keeps a
/// trailing slash, since room prefixes such as `/api/` rely on it.
///
/// Takes anything (room prefixes, any string); a request's path goes
/// through [`normalise_request_path`], which refuses what this would
/// have to guess at.
pub fn normalise(raw_path: &str) -> String {
    fold(&decode(raw_path).text)
}

/// The normal form of a request's path, or why it has none: escapes left
/// after [`MAX_DECODE_LAYERS`] layers, escapes that are not UTF-8, control
/// characters, a segment padded with white space, or characters that stand
/// for ASCII ones. Ordinary paths pass: UTF-8 (`/città/è`, raw or
/// escaped), `%2F` or `+` inside a segment, white space inside a segment,
/// a `%` that starts no escape.
pub fn normalise_request_path(raw_path: &str) -> Result<String, Unnormalisable> {
    let decoded = decode(raw_path);
    if decoded.not_utf8 {
        return Err(Unnormalisable::NotUtf8);
    }
    if has_escape(&decoded.text) {
        return Err(Unnormalisable::TooManyLayers);
    }
    check_characters(&decoded.text)?;
    Ok(fold(&decoded.text))
}

/// A path percent-decoded up to [`MAX_DECODE_LAYERS`] times.
struct Decoded {
    /// Invalid UTF-8 replaced by U+FFFD.
    text: String,
    /// Whether some layer decoded to bytes that are not UTF-8.
    not_utf8: bool,
}

fn decode(raw_path: &str) -> Decoded {
    let (mut text, mut not_utf8) = percent_decode(raw_path);
    for _ in 1..MAX_DECODE_LAYERS {
        if !text.contains('%') {
            break;
        }
        let (again, lossy) = percent_decode(&text);
        if again == text {
            break;
        }
        text = again;
        not_utf8 |= lossy;
    }
    Decoded { text, not_utf8 }
}

/// Whether `text` still holds a valid `%XX` escape.
fn has_escape(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|window| window[0] == b'%' && window[1..].iter().all(u8::is_ascii_hexdigit))
}

/// The characters of a decoded path that a site might read as something
/// else: controls, white space at either end of a segment (segments end at
/// `/`, `\` and `;`, as in [`fold`]), characters that fold to ASCII.
fn check_characters(decoded: &str) -> Result<(), Unnormalisable> {
    if decoded.chars().any(char::is_control) {
        return Err(Unnormalisable::ControlCharacter);
    }
    let padded = decoded.split(['/', '\\', ';']).any(|segment| {
        segment.starts_with(char::is_whitespace) || segment.ends_with(char::is_whitespace)
    });
    if padded {
        return Err(Unnormalisable::PaddedSegment);
    }
    if !decoded.is_ascii() && decoded.chars().any(stands_for_ascii) {
        return Err(Unnormalisable::CompatibilityCharacter);
    }
    Ok(())
}

/// A non-ASCII character whose compatibility form (NFKC) holds an ASCII
/// one: `ｐ` (fullwidth) is `p`, `ﬁ` is `fi`, `K` (Kelvin) is `K`, `ſ` is
/// `s`, `²` is `2`, a no-break space is a space. Sites that fold such
/// characters ("best fit" mappings, NFKC) would read a room's ASCII path in
/// them. Letters with accents are their own NFKC form (`à` stays `à`), so
/// they pass.
fn stands_for_ascii(character: char) -> bool {
    !character.is_ascii() && character.nfkc().any(|folded| folded.is_ascii())
}

/// The rest of [`normalise`], on a decoded path.
fn fold(decoded: &str) -> String {
    let unified = decoded.replace('\\', "/").to_ascii_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    // `;` starts a path parameter (`/api;jsessionid=1/x`), which some
    // upstreams drop before routing.
    for segment in unified
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or(""))
    {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalised = String::with_capacity(unified.len() + 1);
    for segment in &segments {
        normalised.push('/');
        normalised.push_str(segment);
    }
    let last = unified
        .rsplit('/')
        .next()
        .and_then(|segment| segment.split(';').next())
        .unwrap_or("");
    let ends_in_directory = matches!(last, "" | "." | "..");
    if normalised.is_empty() || ends_in_directory {
        normalised.push('/');
    }
    normalised
}

/// Decodes every valid `%XX`. Bytes that do not form UTF-8 become U+FFFD,
/// so a stray invalid escape cannot keep the rest of the path encoded (an
/// upstream that decodes would see through it); the flag says whether any
/// did.
fn percent_decode(input: &str) -> (String, bool) {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Some(value) = std::str::from_utf8(&bytes[index + 1..index + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => (text, false),
        Err(error) => (String::from_utf8_lossy(error.as_bytes()).into_owned(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_tricks() {
        assert_eq!(normalise("/prenota"), "/prenota");
        assert_eq!(normalise("//prenota"), "/prenota");
        assert_eq!(normalise("/x/../prenota"), "/prenota");
        assert_eq!(normalise("/%2Fprenota"), "/prenota");
        assert_eq!(normalise("/%70renota"), "/prenota");
        assert_eq!(normalise("/PRENOTA/"), "/prenota/");
        assert_eq!(normalise("/static/..%2Fprenota"), "/prenota");
        assert_eq!(normalise("/.."), "/");
        assert_eq!(normalise("/api/."), "/api/");
        assert_eq!(normalise(""), "/");
        assert_eq!(normalise("/%"), "/%");
        assert_eq!(normalise("/%zz"), "/%zz");
        assert_eq!(normalise("/echo/%70renota/%ff"), "/echo/prenota/\u{fffd}");
        assert_eq!(normalise("/%2570renota"), "/prenota");
        assert_eq!(normalise("/%252Fprenota"), "/prenota");
        assert_eq!(normalise("/api;jsessionid=1/bookings"), "/api/bookings");
        assert_eq!(normalise("/api/static/..;/bookings"), "/api/bookings");
        assert_eq!(normalise("/api/;x"), "/api/");
    }

    /// Spellings whose meaning depends on how the site decodes: refused,
    /// each for its reason.
    #[test]
    fn what_cannot_be_normalised_is_refused() {
        use Unnormalisable::*;
        for (path, why) in [
            // Five layers: `p` encoded five times over.
            ("/%2525252570renota", TooManyLayers),
            ("/%25252525252570renota", TooManyLayers),
            // Overlong `/`, a lone byte, a byte hidden under a layer.
            ("/%c0%afprenota", NotUtf8),
            ("/prenota/%ff", NotUtf8),
            ("/%25c0%25afprenota", NotUtf8),
            ("/%e0%80%af", NotUtf8),
            ("/pre%00nota", ControlCharacter),
            ("/prenota%0d%0aX-Injected:%201", ControlCharacter),
            ("/api%09/", ControlCharacter),
            ("/%7f", ControlCharacter),
            ("/%c2%85prenota", ControlCharacter),
            ("/%20prenota", PaddedSegment),
            ("/prenota%20", PaddedSegment),
            ("/api%20/bookings", PaddedSegment),
            ("/x;%20/prenota", PaddedSegment),
            ("/%2520prenota", PaddedSegment),
            ("/ｐｒｅｎｏｔａ", CompatibilityCharacter),
            (
                "/%EF%BD%90%EF%BD%92%EF%BD%85%EF%BD%8E%EF%BD%8F%EF%BD%94%EF%BD%81",
                CompatibilityCharacter,
            ),
            ("/%EF%BC%8Fprenota", CompatibilityCharacter),
            ("/%E2%84%AAey", CompatibilityCharacter),
            ("/pre%EF%AC%81x", CompatibilityCharacter),
            ("/pre%C2%A0nota", CompatibilityCharacter),
            ("/%E3%80%80prenota", PaddedSegment),
        ] {
            assert_eq!(normalise_request_path(path), Err(why), "{path}");
        }
    }

    /// Ordinary paths, however unusual, are normalised as before.
    #[test]
    fn ordinary_paths_are_not_refused() {
        for path in [
            "",
            "/",
            "/prenota",
            "/città/è",
            "/citt%C3%A0/%C3%A8",
            "/CITT%C3%80",
            "/cafe%CC%81",
            "/%E4%B8%AD%E6%96%87/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
            "/a%2Fb",
            "/a+b",
            "/a%20b/c d",
            "/100%",
            "/%zz",
            "/api;jsessionid=1/bookings",
            "/x/../prenota",
            "/%25252570renota",
            "/echo\\prenota",
            "/%F0%9F%8E%9F",
            "/n%C2%B0/1",
        ] {
            assert_eq!(
                normalise_request_path(path).as_deref(),
                Ok(normalise(path).as_str()),
                "{path}"
            );
        }
    }
}
