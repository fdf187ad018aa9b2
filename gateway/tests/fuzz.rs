//! Fixed-budget fuzzing of the parsers that read what visitors send: signed
//! tokens from cookies, request paths, `Accept-Language`, and the values the
//! waiting page echoes back. Everything goes through the crate's public API,
//! with hostile input: arbitrary strings, arbitrary bytes read lossily, huge
//! inputs, and genuine values altered one byte at a time.
//!
//! Each property has an explicit case budget so the whole file stays well
//! under half a minute in a debug build; proptest picks a fresh seed on
//! every run, so CI keeps exploring. Failures are not persisted to disk (the
//! shrunk case is printed instead).

use anteroom_config::{Config, Room};
use anteroom_gateway::page::{EventView, Pages, Reader, Stage, WaitingView, WallClock};
use anteroom_gateway::paths::{normalise, normalise_request_path, room_for};
use anteroom_gateway::token::{Keyring, MAX_TOKEN_LEN, Pass, Ticket, new_pass_id};
use anteroom_store::RoomState;
use proptest::prelude::*;
use proptest::string::{RegexGeneratorStrategy, string_regex};
use proptest::test_runner::Config as ProptestConfig;

const KEY: &str = "fuzz-cookie-key-0123456789abcdefghijklmnop";

// ---------------------------------------------------------------- budgets

/// Cheap properties (a few microseconds a case).
fn cheap() -> ProptestConfig {
    budget(512)
}

/// Properties that sign, render a page, or build big inputs.
fn moderate() -> ProptestConfig {
    budget(128)
}

/// Properties over inputs of hundreds of kilobytes.
fn huge() -> ProptestConfig {
    budget(16)
}

fn budget(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- strategies

/// A regex strategy compiled once. (A `&str` used as a strategy is compiled
/// again for every value, which inside a collection costs most of the
/// budget.)
fn regex(pattern: &str) -> RegexGeneratorStrategy<String> {
    string_regex(pattern).expect("a valid regex")
}

/// Arbitrary bytes, as a server that reads them lossily would see them.
fn lossy_bytes(max_len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..max_len)
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Arbitrary strings of up to a few hundred kilobytes: a random piece
/// repeated (generating every byte separately would spend the budget on
/// generation).
fn huge_string() -> impl Strategy<Value = String> {
    (any::<String>(), 1usize..200_000).prop_map(|(piece, repeat)| {
        let piece = if piece.is_empty() {
            "%2F.".to_owned()
        } else {
            piece
        };
        let mut out = String::new();
        while out.len() < repeat {
            out.push_str(&piece);
        }
        out
    })
}

/// Strings shaped like tokens (`KID.PAYLOAD.SIG` in URL-safe base64), so
/// that they get past the cheap checks into decoding and the MAC.
fn token_shaped() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,8}\\.[A-Za-z0-9_=+/-]{0,200}\\.[A-Za-z0-9_=+/-]{0,64}"
}

fn ticket() -> impl Strategy<Value = Ticket> {
    ("[a-z0-9_-]{1,32}", any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(room, epoch, number, issued_at)| Ticket {
            room,
            epoch,
            number,
            issued_at,
        },
    )
}

fn pass() -> impl Strategy<Value = Pass> {
    (
        "[a-z0-9_-]{1,32}",
        any::<u128>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(room, id, admitted_at, last_seen)| Pass {
            room,
            epoch: 0,
            id: format!("{id:032x}"),
            admitted_at,
            last_seen,
        })
}

/// A cookie secret as the config accepts them (32+ characters).
fn secret() -> impl Strategy<Value = String> {
    "[ -~]{32,64}"
}

/// One single-byte edit of a token.
#[derive(Debug, Clone)]
enum Edit {
    Replace { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        any::<usize>().prop_map(|at| Edit::Delete { at }),
    ]
}

/// `token` with `edit` applied, read lossily (a byte that breaks UTF-8 turns
/// into U+FFFD, itself a change).
fn apply(token: &str, edit: &Edit) -> String {
    let mut bytes = token.as_bytes().to_vec();
    match *edit {
        Edit::Replace { at, byte } => {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        Edit::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Edit::Delete { at } => {
            bytes.remove(at % bytes.len());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------- tokens

proptest! {
    #![proptest_config(cheap())]

    #[test]
    fn verifying_arbitrary_strings_finds_nothing(token in any::<String>()) {
        let keys = Keyring::new(&[KEY]);
        prop_assert_eq!(keys.verify_ticket(&token), None);
        prop_assert_eq!(keys.verify_pass(&token), None);
    }

    #[test]
    fn verifying_arbitrary_bytes_finds_nothing(token in lossy_bytes(1024)) {
        let keys = Keyring::new(&[KEY]);
        prop_assert_eq!(keys.verify_ticket(&token), None);
        prop_assert_eq!(keys.verify_pass(&token), None);
    }

    #[test]
    fn verifying_token_shaped_strings_finds_nothing(token in token_shaped()) {
        let keys = Keyring::new(&[KEY]);
        prop_assert_eq!(keys.verify_ticket(&token), None);
        prop_assert_eq!(keys.verify_pass(&token), None);
    }

    /// A forger who knows our key id (it is in every cookie we hand out)
    /// still needs the MAC.
    #[test]
    fn a_known_key_id_with_a_made_up_payload_finds_nothing(
        payload in "[A-Za-z0-9_-]{0,200}",
        signature in "[A-Za-z0-9_-]{0,64}",
    ) {
        let keys = Keyring::new(&[KEY]);
        let genuine = keys.sign_ticket(&Ticket {
            room: "vaccini".into(),
            epoch: 1,
            number: 1,
            issued_at: 1,
        });
        let key_id = genuine.split('.').next().expect("a key id");
        let forged = format!("{key_id}.{payload}.{signature}");
        prop_assert_eq!(keys.verify_ticket(&forged), None);
        prop_assert_eq!(keys.verify_pass(&forged), None);
    }
}

proptest! {
    #![proptest_config(huge())]

    #[test]
    fn verifying_huge_strings_finds_nothing(token in huge_string()) {
        let keys = Keyring::new(&[KEY]);
        prop_assert_eq!(keys.verify_ticket(&token), None);
        prop_assert_eq!(keys.verify_pass(&token), None);
    }
}

proptest! {
    #![proptest_config(moderate())]

    /// One byte changed, added or removed anywhere in a genuine ticket: it
    /// is rejected, or (if the edit changed nothing) it is the same ticket.
    /// Never a different ticket, and never a pass.
    #[test]
    fn an_edited_ticket_is_never_another_ticket(original in ticket(), edit in edit()) {
        let keys = Keyring::new(&[KEY]);
        let token = keys.sign_ticket(&original);
        prop_assert!(token.len() <= MAX_TOKEN_LEN, "{} bytes", token.len());
        let edited = apply(&token, &edit);
        match keys.verify_ticket(&edited) {
            None => {}
            Some(found) => {
                prop_assert_eq!(&edited, &token, "an edited token was accepted");
                prop_assert_eq!(found, original);
            }
        }
        prop_assert_eq!(keys.verify_pass(&edited), None);
    }

    #[test]
    fn an_edited_pass_is_never_another_pass(original in pass(), edit in edit()) {
        let keys = Keyring::new(&[KEY]);
        let token = keys.sign_pass(&original);
        prop_assert!(token.len() <= MAX_TOKEN_LEN, "{} bytes", token.len());
        let edited = apply(&token, &edit);
        match keys.verify_pass(&edited) {
            None => {}
            Some(found) => {
                prop_assert_eq!(&edited, &token, "an edited token was accepted");
                prop_assert_eq!(found, original);
            }
        }
        prop_assert_eq!(keys.verify_ticket(&edited), None);
    }

    /// Whatever a room is called (config only allows `[a-z0-9_-]`, but the
    /// signing layer must not rely on it), a signed value comes back as it
    /// was or not at all: a `|` in the room cannot shift the other fields.
    #[test]
    fn any_room_name_round_trips_or_is_rejected(room in any::<String>(), number: u64, id in any::<u128>()) {
        let keys = Keyring::new(&[KEY]);
        let ticket = Ticket { room: room.clone(), epoch: 3, number, issued_at: 4 };
        match keys.verify_ticket(&keys.sign_ticket(&ticket)) {
            None => prop_assert!(room.contains('|') || keys.sign_ticket(&ticket).len() > MAX_TOKEN_LEN),
            Some(found) => prop_assert_eq!(found, ticket),
        }
        let pass = Pass { room: room.clone(), epoch: 0, id: format!("{id:032x}"), admitted_at: 5, last_seen: 6 };
        match keys.verify_pass(&keys.sign_pass(&pass)) {
            None => prop_assert!(room.contains('|') || keys.sign_pass(&pass).len() > MAX_TOKEN_LEN),
            Some(found) => prop_assert_eq!(found, pass),
        }
    }

    /// A token signed with key A is accepted by exactly the keyrings that
    /// hold A, whatever else they hold and in whichever order.
    #[test]
    fn only_a_keyring_holding_the_signing_key_accepts(
        a in secret(),
        b in secret(),
        c in secret(),
        ticket in ticket(),
        pass_room in "[a-z0-9_-]{1,32}",
    ) {
        prop_assume!(a != b && a != c);
        let signer = Keyring::new(&[a.as_str()]);
        let ticket_token = signer.sign_ticket(&ticket);
        let pass = Pass { room: pass_room, epoch: 0, id: new_pass_id(), admitted_at: 1, last_seen: 2 };
        let pass_token = signer.sign_pass(&pass);
        for stranger in [Keyring::new(&[b.as_str()]), Keyring::new(&[b.as_str(), c.as_str()])] {
            prop_assert_eq!(stranger.verify_ticket(&ticket_token), None);
            prop_assert_eq!(stranger.verify_pass(&pass_token), None);
        }
        for holder in [Keyring::new(&[b.as_str(), a.as_str()]), Keyring::new(&[a.as_str(), c.as_str()])] {
            prop_assert_eq!(holder.verify_ticket(&ticket_token), Some(ticket.clone()));
            prop_assert_eq!(holder.verify_pass(&pass_token), Some(pass.clone()));
        }
    }
}

// ---------------------------------------------------------------- paths

/// The rooms of the product brief: `/prenota` and `/api/` are protected,
/// `/api/static/` passes freely.
fn rooms() -> Vec<Room> {
    rooms_from(
        r#"
        upstream = "http://127.0.0.1:3000"
        [[room]]
        name = "vaccini"
        paths = ["/prenota", "/api/"]
        exclude = ["/api/static/"]
        capacity = 2
        admit_per_minute = 60
        "#,
    )
}

fn rooms_from(toml: &str) -> Vec<Room> {
    Config::from_toml(toml, |_| None)
        .expect("the fuzz config is valid")
        .rooms
}

/// A protected path, as segments (`["api", "bookings"]`), and whether it
/// ends in a slash.
fn protected_path() -> impl Strategy<Value = (Vec<String>, bool)> {
    let tail = || prop::collection::vec(regex("[a-z0-9_~-]{1,8}"), 0..4);
    prop_oneof![
        (tail(), any::<bool>()).prop_map(|(tail, slash)| {
            let mut segments = vec!["prenota".to_owned()];
            segments.extend(tail);
            (segments, slash)
        }),
        (tail(), any::<bool>()).prop_map(|(mut tail, slash)| {
            // Right under /api/ only `static` is excluded; any other first
            // segment (or none, with the slash) is protected.
            if tail.first().is_some_and(|first| first == "static") {
                tail[0] = "bookings".to_owned();
            }
            let slash = slash || tail.is_empty();
            let mut segments = vec!["api".to_owned()];
            segments.extend(tail);
            (segments, slash)
        }),
    ]
}

/// Paths made of escapes and the characters escapes can form.
fn escape_soup() -> impl Strategy<Value = String> {
    "(%25|%2[eEfF5]|%[0-9a-fA-F]{2}|%|[0-9a-fA-F]|/|\\\\|\\.|p){0,24}"
}

/// How to spell a path: choices drawn once, used in turn while spelling.
#[derive(Debug, Clone)]
struct Spelling {
    /// Per character of a segment: 0-4 as is, 5 flip case, 6 percent-encode
    /// (upper-case hex), 7 percent-encode (lower-case hex).
    characters: Vec<u8>,
    /// Per separator: `/`, `//`, `%2F`, `%2f`, `\`, `/%2F`.
    separators: Vec<u8>,
    /// Segments spliced in after a separator: (which separator, kind, x),
    /// the kind being 0 `./`, 1 `%2e/`, 2 `x/../`.
    detours: Vec<(usize, u8, String)>,
    /// Appended to the last segment: characters with no meaning in a path.
    junk: String,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        prop::collection::vec(0u8..8, 64),
        prop::collection::vec(0u8..6, 16),
        prop::collection::vec(
            (
                any::<usize>(),
                0u8..3,
                regex("static|api|prenota|[a-z]{1,4}|\\.\\.\\.|x\\."),
            ),
            0..4,
        ),
        "[a-zA-Z0-9_~!$&'()*+,;=:@-]{0,8}",
    )
        .prop_map(|(characters, separators, detours, junk)| Spelling {
            characters,
            separators,
            detours,
            junk,
        })
}

/// Spells `segments` (plus a trailing slash) the way `spelling` says.
fn spell(segments: &[String], trailing_slash: bool, spelling: &Spelling) -> String {
    // Units: Some(segment) or None for a separator. A separator precedes each
    // segment; detours go in right after a separator.
    let mut units: Vec<Option<String>> = Vec::new();
    for segment in segments {
        units.push(None);
        units.push(Some(segment.clone()));
    }
    if trailing_slash {
        units.push(None);
    }
    if let Some(Some(last)) = units.last_mut() {
        last.push_str(&spelling.junk);
    } else if !spelling.junk.is_empty() {
        units.push(Some(spelling.junk.clone()));
    }
    let separator_positions: Vec<usize> =
        (0..units.len()).filter(|i| units[*i].is_none()).collect();
    let mut detours = spelling.detours.clone();
    // Splice from the back so earlier positions stay valid.
    detours.sort_by_key(|(at, _, _)| std::cmp::Reverse(*at % separator_positions.len()));
    for (at, kind, detour) in detours {
        let after = separator_positions[at % separator_positions.len()] + 1;
        let spliced: Vec<Option<String>> = match kind {
            0 => vec![Some(".".into()), None],
            1 => vec![Some("%2e".into()), None],
            _ => vec![Some(detour), None, Some("..".into()), None],
        };
        units.splice(after..after, spliced);
    }
    let mut out = String::new();
    let mut characters = spelling.characters.iter().cycle();
    let mut separators = spelling.separators.iter().cycle();
    for unit in units {
        match unit {
            None => out.push_str(match separators.next().copied().unwrap_or(0) {
                0 => "/",
                1 => "//",
                2 => "%2F",
                3 => "%2f",
                4 => "\\",
                _ => "/%2F",
            }),
            // Percent signs spliced in on purpose (`%2e`) stay as they are.
            Some(segment) if segment.contains('%') => out.push_str(&segment),
            Some(segment) => {
                for character in segment.chars() {
                    match characters.next().copied().unwrap_or(0) {
                        5 if character.is_ascii_lowercase() => {
                            out.push(character.to_ascii_uppercase())
                        }
                        5 => out.push(character.to_ascii_lowercase()),
                        6 => out.push_str(&format!("%{:02X}", u32::from(character))),
                        7 => out.push_str(&format!("%{:02x}", u32::from(character))),
                        _ => out.push(character),
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(cheap())]

    #[test]
    fn normalise_and_room_for_take_any_string(path in any::<String>()) {
        let rooms = rooms();
        let normalised = normalise(&path);
        prop_assert!(normalised.starts_with('/'), "{:?} -> {:?}", path, normalised);
        let _ = room_for(&rooms, &path);
    }

    #[test]
    fn normalise_and_room_for_take_any_bytes(path in lossy_bytes(512)) {
        let rooms = rooms();
        prop_assert!(normalise(&path).starts_with('/'));
        let _ = room_for(&rooms, &path);
    }

    /// Paths made of the characters that matter to normalisation.
    #[test]
    fn normalise_and_room_for_take_path_soup(path in escape_soup()) {
        let rooms = rooms();
        prop_assert!(normalise(&path).starts_with('/'));
        let _ = room_for(&rooms, &path);
    }

    /// Without escapes, normalising twice changes nothing. (With escapes it
    /// can: see `normalise_is_idempotent` below.)
    #[test]
    fn normalise_is_idempotent_without_escapes(path in "[/\\\\.a-zA-Z0-9_~-]{0,64}|[^%]{0,64}") {
        let once = normalise(&path);
        prop_assert_eq!(normalise(&once), once.clone(), "{:?}", path);
    }

    /// However a protected path is spelled (case, escapes including `%2F`,
    /// `./` and `x/../` detours, doubled slashes, backslashes, trailing
    /// characters), its room still protects it.
    #[test]
    fn spelling_a_protected_path_differently_never_walks_around_its_room(
        (segments, trailing_slash) in protected_path(),
        spelling in spelling(),
    ) {
        let rooms = rooms();
        let spelled = spell(&segments, trailing_slash, &spelling);
        prop_assert_eq!(
            room_for(&rooms, &spelled),
            Some(0),
            "{:?} (normalised {:?}) is not protected",
            spelled,
            normalise(&spelled)
        );
    }
}

/// A path of ordinary words in several scripts (letters that are their
/// own compatibility form), each character sent raw or percent-encoded as
/// UTF-8, as browsers do.
fn ordinary_utf8_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(regex("[a-zA-Z0-9à-ÿа-я一-龥._~+-]{1,8}"), 0..5),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 64),
    )
        .prop_map(|(segments, trailing_slash, escape)| {
            let mut escape = escape.into_iter().cycle();
            let mut path = String::new();
            for segment in segments {
                path.push('/');
                for character in segment.chars() {
                    if escape.next().unwrap_or(false) {
                        let mut bytes = [0; 4];
                        for byte in character.encode_utf8(&mut bytes).bytes() {
                            path.push_str(&format!("%{byte:02X}"));
                        }
                    } else {
                        path.push(character);
                    }
                }
            }
            if trailing_slash || path.is_empty() {
                path.push('/');
            }
            path
        })
}

proptest! {
    #![proptest_config(cheap())]

    /// The strict form of a request path takes anything, and when it
    /// accepts a path its normal form is the one matching uses.
    #[test]
    fn normalise_request_path_takes_any_string(path in any::<String>()) {
        if let Ok(normalised) = normalise_request_path(&path) {
            prop_assert_eq!(normalised, normalise(&path), "{:?}", path);
        }
    }

    #[test]
    fn normalise_request_path_takes_any_bytes(path in lossy_bytes(512)) {
        if let Ok(normalised) = normalise_request_path(&path) {
            prop_assert_eq!(normalised, normalise(&path), "{:?}", path);
        }
    }

    #[test]
    fn normalise_request_path_takes_path_soup(path in escape_soup()) {
        if let Ok(normalised) = normalise_request_path(&path) {
            prop_assert_eq!(normalised, normalise(&path), "{:?}", path);
        }
    }

    /// Ordinary UTF-8 paths, raw or escaped, are never refused.
    #[test]
    fn an_ordinary_utf8_path_is_never_refused(path in ordinary_utf8_path()) {
        prop_assert_eq!(normalise_request_path(&path), Ok(normalise(&path)), "{:?}", path);
    }
}

proptest! {
    #![proptest_config(huge())]

    #[test]
    fn normalise_and_room_for_take_huge_paths(path in huge_string()) {
        let rooms = rooms();
        prop_assert!(normalise(&path).starts_with('/'));
        let _ = room_for(&rooms, &path);
    }
}

proptest! {
    #![proptest_config(cheap())]

    /// Normalising twice gives what normalising once gives, for paths of up
    /// to three layers of encoding (`normalise` undoes at most four; a deeper
    /// nesting is only ever hostile, and undoing it without bound would let
    /// a long path cost quadratic time). Every layer past the first needs an
    /// encoded `%`, spelled with `25`.
    #[test]
    fn normalise_is_idempotent(path in escape_soup()) {
        prop_assume!(path.matches("25").count() < 3);
        let once = normalise(&path);
        prop_assert_eq!(normalise(&once), once.clone(), "{:?}", path);
    }
}

/// A doubly encoded protected path is still recognised by its room: an
/// upstream (or something between the gateway and it) that decodes twice,
/// as IIS and some application frameworks do, must not be a way in.
#[test]
fn a_double_encoded_protected_path_is_still_protected() {
    let rooms = rooms();
    for path in [
        "/%2570renota",
        "/%252Fprenota",
        "/%2561pi/bookings",
        "/x/%252e%252e/prenota",
    ] {
        assert_eq!(room_for(&rooms, path), Some(0), "{path:?}");
    }
}

/// A room path that has to be written percent-encoded in the config (the
/// config asks for plain ASCII, "percent-encode other characters, as a
/// browser sends them") is matched only against the raw request path,
/// lowercased: escaping one more character, sending the raw UTF-8, or a dot
/// segment in front walks around it. (Doubled slashes and case do not: the
/// raw form still starts with the prefix.)
#[test]
fn a_percent_encoded_room_path_is_protected_however_it_is_spelled() {
    let rooms = rooms_from(
        r#"
        upstream = "http://127.0.0.1:3000"
        [[room]]
        name = "citta"
        paths = ["/citt%C3%A0/"]
        capacity = 2
        admit_per_minute = 60
        "#,
    );
    assert_eq!(room_for(&rooms, "/citt%C3%A0/prenota"), Some(0));
    assert_eq!(room_for(&rooms, "/citt%c3%a0/prenota"), Some(0));
    assert_eq!(room_for(&rooms, "/CITT%C3%A0//prenota"), Some(0));
    for path in [
        "/%63itt%C3%A0/prenota",
        "/città/prenota",
        "/x/../citt%C3%A0/prenota",
    ] {
        assert_eq!(room_for(&rooms, path), Some(0), "{path:?}");
    }
}

// ---------------------------------------------------------------- Accept-Language

/// Header values built from the pieces `Accept-Language` parsing looks at.
fn accept_language_soup() -> impl Strategy<Value = String> {
    let tag = regex("it|en|IT|En|\\*|it-IT|en-GB|fr|x-it|[a-zA-Z-]{0,10}|\\PC{0,4}");
    let quality = regex(
        "|;q=|;q=[0-9.eE+-]{0,8}|;Q=1|;q=NaN|;q=inf|;q=-0|;q=1e-40|;q=0x1|;[a-z]{0,3}=[0-9.]{0,4}",
    );
    prop::collection::vec((tag, quality, regex(" {0,2}")), 0..48).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(tag, quality, space)| format!("{space}{tag}{quality}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

proptest! {
    #![proptest_config(cheap())]

    #[test]
    fn accept_language_takes_any_string(header in any::<String>()) {
        let _ = PAGES.from_accept_language(Some(&header));
    }

    #[test]
    fn accept_language_takes_any_bytes(header in lossy_bytes(512)) {
        let _ = PAGES.from_accept_language(Some(&header));
    }

    /// Italian only when some entry's primary tag is `it`.
    #[test]
    fn accept_language_picks_italian_only_when_asked(header in accept_language_soup()) {
        let lang = PAGES.from_accept_language(Some(&header));
        if !header.to_ascii_lowercase().contains("it") {
            prop_assert_eq!(PAGES.code(lang), "en", "{:?}", header);
        }
    }
}

proptest! {
    #![proptest_config(huge())]

    #[test]
    fn accept_language_takes_huge_headers(header in huge_string()) {
        let _ = PAGES.from_accept_language(Some(&header));
    }
}

// ---------------------------------------------------------------- the waiting page

/// The built-in pages, compiled once for every case.
static PAGES: std::sync::LazyLock<Pages> = std::sync::LazyLock::new(Pages::new);

/// Strings an attacker would put in a room name or a status URL.
fn markup_soup() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(<script>|<SCRIPT |<ScRiPt/|</script>|<!--|-->|\"|'|&|<|>|=|javascript:|\\PC){0,16}",
    ]
}

/// How many of each character that can open or close markup a page holds.
fn markup_counts(page: &str) -> [usize; 4] {
    ['<', '>', '"', '\''].map(|metacharacter| page.matches(metacharacter).count())
}

proptest! {
    #![proptest_config(moderate())]

    /// Whatever the room name, status URL and draw URL hold, the page's
    /// markup is the template's: the page has exactly as many `<`, `>`, `"`
    /// and `'` as with harmless values, so no input opens a tag (`<script`
    /// included) or leaves an attribute. In every stage of a launch event.
    #[test]
    fn the_waiting_page_escapes_whatever_it_shows(
        room in markup_soup(),
        status_url in markup_soup(),
        draw_url in markup_soup(),
        stage in prop_oneof![
            Just(Stage::NotOpen),
            Just(Stage::InLine),
            any::<u64>().prop_map(|ticket| Stage::PreQueue { ticket }),
        ],
        figures in any::<(Option<u64>, Option<u64>, Option<u64>)>(),
        position in any::<Option<u64>>(),
        eta_seconds in any::<Option<u64>>(),
        refresh_seconds: u64,
        updated_unix_seconds: u64,
        query in markup_soup(),
    ) {
        let pages = &*PAGES;
        for code in ["it", "en"] {
            let lang = pages.lang(code).expect("a built-in language");
            let (opens_in_seconds, pre_queue, draw_place) = figures;
            let noon = WallClock { month: 3, day: 1, weekday: 0, hour: 12, minute: 0 };
            let event = EventView {
                opens_at: Some(noon),
                pre_queue_from: Some(WallClock { hour: 11, ..noon }),
                opens_in_seconds,
                pre_queue,
                draw_place,
                draw_url: Some("/_anteroom/draw?room=vaccini"),
            };
            let harmless = WaitingView {
                room: "vaccini",
                stage,
                position,
                eta_seconds,
                refresh_seconds,
                updated_unix_seconds,
                status_url: "/_anteroom/status?room=vaccini",
                room_state: RoomState::Open,
                site_trouble: false,
                event,
            };
            let hostile = WaitingView {
                room: &room,
                status_url: &status_url,
                event: EventView { draw_url: Some(&draw_url), ..event },
                ..harmless
            };
            let page = pages.waiting(Reader { lang, query: &query }, &hostile);
            let expected = pages.waiting(Reader { lang, query: "x=1" }, &harmless);
            prop_assert_eq!(markup_counts(&page), markup_counts(&expected));
            prop_assert_eq!(
                page.to_ascii_lowercase().matches("<script").count(),
                expected.to_ascii_lowercase().matches("<script").count()
            );
        }
    }
}
