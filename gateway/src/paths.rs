//! Which room protects a request path.
//!
//! Matching is done on a normalised form of the path (percent-decoded until
//! nothing changes, `;` parameters dropped, slashes collapsed, dot segments
//! resolved, ASCII-lowercased) against the normalised room prefixes, and on
//! the raw path lowercased against the prefixes as written: a request is
//! protected if either form falls in a room, so that spelling a path
//! differently (for this gateway, or for an upstream that decodes twice or
//! drops `;` parameters) never walks around a room.

use anteroom_config::Room;

/// Layers of percent-encoding undone at most. Real paths have one; a second
/// is only ever an attempt to slip past a decoder.
const MAX_DECODE_LAYERS: usize = 4;

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
        let normalised = normalise(raw_path);
        let raw = raw_path.to_ascii_lowercase();
        self.rooms.iter().position(|room| {
            protects(
                &room.normalised_paths,
                &room.normalised_exclude,
                &normalised,
            ) || protects(&room.paths, &room.exclude, &raw)
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
pub fn normalise(raw_path: &str) -> String {
    let mut decoded = percent_decode(raw_path);
    for _ in 1..MAX_DECODE_LAYERS {
        if !decoded.contains('%') {
            break;
        }
        let again = percent_decode(&decoded);
        if again == decoded {
            break;
        }
        decoded = again;
    }
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
/// upstream that decodes would see through it).
fn percent_decode(input: &str) -> String {
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
    String::from_utf8_lossy(&out).into_owned()
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
}
