//! Which room protects a request path.
//!
//! Matching is done on a normalised form of the path (percent-decoded,
//! slashes collapsed, dot segments resolved, ASCII-lowercased) and on the raw
//! path lowercased: a request is protected if either form falls in a room, so
//! that spelling a path differently never walks around a room.

use anteroom_config::Room;

/// The index of the room protecting `raw_path`, if any.
pub fn room_for(rooms: &[Room], raw_path: &str) -> Option<usize> {
    let normalised = normalise(raw_path);
    let raw = raw_path.to_ascii_lowercase();
    rooms
        .iter()
        .position(|room| protects(room, &normalised) || protects(room, &raw))
}

fn protects(room: &Room, path: &str) -> bool {
    room.paths
        .iter()
        .any(|prefix| path.starts_with(prefix.as_str()))
        && !room
            .exclude
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
}

/// Percent-decodes (invalid UTF-8 becomes U+FFFD), treats `\` as `/`, collapses
/// repeated slashes, resolves `.` and `..`, lowercases ASCII. Keeps a
/// trailing slash, since room prefixes such as `/api/` rely on it.
pub fn normalise(raw_path: &str) -> String {
    let decoded = percent_decode(raw_path);
    let unified = decoded.replace('\\', "/").to_ascii_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in unified.split('/') {
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
    let ends_in_directory =
        unified.ends_with('/') || unified.ends_with("/.") || unified.ends_with("/..");
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
    }
}
