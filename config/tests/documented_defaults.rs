//! The defaults are written once, in `anteroom_config::defaults`; the
//! README's configuration table and `anteroom.example.toml` state them
//! again for people. These tests fail when either states a default the code
//! does not apply, leaves out a key the code knows, or names a key the code
//! does not know; and when `defaults::table` misses a key the file accepts.
//!
//! How the documents state a default:
//! - README: a row `| key | default | meaning |`; several keys of one table
//!   may share a row, `` `limits.a` / `b` `` with defaults `1 / 2`. A
//!   default is a value (backticks optional; `16 KiB` and `1 MiB` allowed),
//!   `required…` or `none`.
//! - example: the comment block above each key line (`key = …`, or
//!   `# key = …` for a key shown commented out) states exactly one of
//!   `Default VALUE`, `Default: none`, `"VALUE" (default)`, `No default` or
//!   `Required`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anteroom_config::defaults::{self, KeyDefault};
use anteroom_config::{Config, ConfigError};

#[test]
fn the_table_lists_every_key_the_file_accepts() {
    let listed: BTreeSet<String> = defaults::table()
        .into_iter()
        .map(|(key, _)| key.to_owned())
        .collect();
    let mut accepted = BTreeSet::new();
    for table in [
        "", "store", "secrets", "limits", "worker", "cookies", "pages",
    ] {
        let header = if table.is_empty() {
            String::new()
        } else {
            format!("[{table}]\n")
        };
        accepted.extend(accepted_keys(&header, table));
    }
    for table in ["room", "buffer"] {
        accepted.extend(accepted_keys(&format!("[[{table}]]\n"), table));
    }
    accepted.extend(accepted_keys(
        "[[room]]\n[room.adaptive]\n",
        "room.adaptive",
    ));
    assert_eq!(listed, accepted, "defaults::table() and the file's keys");
}

#[test]
fn the_readme_table_states_the_code_defaults() {
    let readme = read("../README.md");
    let documented = readme_defaults(&readme);
    compare("README.md's configuration table", &documented);
}

#[test]
fn the_annotated_example_states_the_code_defaults() {
    let example = read("anteroom.example.toml");
    let documented = example_defaults(&example);
    compare("anteroom.example.toml", &documented);
}

/// The examples of this file's rules about how a default is written.
#[test]
fn documented_values_are_read_as_written() {
    let value = |text: &str| KeyDefault::Value(text.to_owned());
    assert_eq!(normalise("`0.0.0.0:8080`"), value("0.0.0.0:8080"));
    assert_eq!(normalise("\"0.0.0.0:8080\""), value("0.0.0.0:8080"));
    assert_eq!(normalise("16 KiB"), value("16384"));
    assert_eq!(normalise("1 MiB"), value("1048576"));
    assert_eq!(normalise("1_000"), value("1000"));
    assert_eq!(normalise("`[\"a\",\"b\"]`"), value("[\"a\", \"b\"]"));
    assert_eq!(normalise("required with `postgres`"), KeyDefault::Required);
    assert_eq!(normalise("none"), KeyDefault::Unset);
    let block = "# Some words (default 80). Default \"x.y\". More.";
    assert_eq!(stated_defaults(block), vec![value("x.y")]);
    let block = "#   \"auto\" (default): when\n#   \"always\": always";
    assert_eq!(stated_defaults(block), vec![value("auto")]);
    let block = "# Default [\"a\",\n# \"b\"]. With more.";
    assert_eq!(stated_defaults(block), vec![value("[\"a\", \"b\"]")]);
    let block = "# Default 86400\n# (one day), from 60 to 2592000.";
    assert_eq!(stated_defaults(block), vec![value("86400")]);
}

/// `documented`: every key a document names, with each default it states
/// for it.
fn compare(document: &str, documented: &BTreeMap<String, Vec<KeyDefault>>) {
    let table = defaults::table();
    let mut problems = Vec::new();
    for (key, default) in &table {
        match documented.get(*key).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("{key}: missing")),
            Some([stated]) if stated == default => {}
            Some([stated]) => {
                problems.push(format!("{key}: states {stated:?}, the code {default:?}"))
            }
            Some(several) => problems.push(format!("{key}: states several: {several:?}")),
        }
    }
    for key in documented.keys() {
        if !table.iter().any(|(known, _)| known == key) {
            problems.push(format!("{key}: not a key the code knows"));
        }
    }
    assert!(problems.is_empty(), "{document}:\n{}", problems.join("\n"));
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The keys a table accepts, from the message naming them when it meets an
/// unknown one (`expected one of `a`, `b``), dotted with `table`.
fn accepted_keys(header: &str, table: &str) -> Vec<String> {
    let text = format!("upstream = \"http://127.0.0.1:3000\"\n{header}not_a_key = 1\n");
    let message = match Config::from_toml(&text, |_| None) {
        Err(ConfigError::Parse(message)) => message,
        other => panic!("an unknown key in [{table}] is refused: {other:?}"),
    };
    let (_, expected) = message
        .split_once("expected ")
        .unwrap_or_else(|| panic!("the message names the accepted keys: {message}"));
    let subtables: &[&str] = match table {
        "" => &[
            "store", "secrets", "limits", "worker", "cookies", "room", "buffer", "pages",
        ],
        "room" => &["adaptive"],
        _ => &[],
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|key| !subtables.contains(key))
        .map(|key| dotted(table, key))
        .collect()
}

fn dotted(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

fn readme_defaults(readme: &str) -> BTreeMap<String, Vec<KeyDefault>> {
    let (_, section) = readme
        .split_once("\n## Configuration reference\n")
        .expect("README.md has a Configuration reference");
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert_eq!(
        rows.first().copied(),
        Some("| key | default | meaning |"),
        "the table's header"
    );
    let mut documented: BTreeMap<String, Vec<KeyDefault>> = BTreeMap::new();
    for row in rows.iter().skip(2) {
        let cells: Vec<&str> = row
            .trim_matches('|')
            .splitn(3, '|')
            .map(str::trim)
            .collect();
        let [keys, stated, _meaning] = cells[..] else {
            panic!("a row of three cells: {row}");
        };
        let keys: Vec<&str> = keys.split(" / ").map(|key| key.trim_matches('`')).collect();
        let stated: Vec<&str> = stated.split(" / ").collect();
        assert_eq!(keys.len(), stated.len(), "one default per key: {row}");
        let table = keys[0].rsplit_once('.').map_or("", |(table, _)| table);
        for (key, stated) in keys.iter().zip(stated) {
            let key = if key.contains('.') {
                (*key).to_owned()
            } else {
                dotted(table, key)
            };
            documented.entry(key).or_default().push(normalise(stated));
        }
    }
    documented
}

fn example_defaults(example: &str) -> BTreeMap<String, Vec<KeyDefault>> {
    let known: BTreeSet<&str> = defaults::table().into_iter().map(|(key, _)| key).collect();
    let mut documented: BTreeMap<String, Vec<KeyDefault>> = BTreeMap::new();
    let mut table = String::new();
    let mut block = String::new();
    for line in example.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            block.clear();
        } else if line.starts_with('[') {
            table = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            block.clear();
        } else if let Some(key) = key_of(line, &table, &known) {
            documented
                .entry(key)
                .or_default()
                .extend(stated_defaults(&block));
            block.clear();
        } else if line.starts_with('#') {
            block.push_str(line);
            block.push('\n');
        } else {
            panic!("anteroom.example.toml: a line that is neither comment nor key: {line}");
        }
    }
    documented
}

/// The dotted key a line sets, or shows commented out (`# key = …`, a key
/// the code knows, so that prose is not taken for one).
fn key_of(line: &str, table: &str, known: &BTreeSet<&str>) -> Option<String> {
    let (commented, setting) = match line.strip_prefix("# ") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (key, _) = setting.split_once(" = ")?;
    if key.is_empty()
        || !key
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    {
        assert!(commented, "not a key line: {line}");
        return None;
    }
    let key = dotted(table, key);
    if commented && !known.contains(key.as_str()) {
        return None;
    }
    Some(key)
}

/// Each default a comment block states, normalised.
fn stated_defaults(block: &str) -> Vec<KeyDefault> {
    let text: String = block
        .lines()
        .map(|line| line.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ");
    let mut stated = Vec::new();
    for (at, _) in text.match_indices("Default") {
        let rest = text[at + "Default".len()..]
            .trim_start_matches(':')
            .trim_start();
        stated.push(normalise(value_at_start(rest)));
    }
    for (at, _) in text.match_indices(" (default)") {
        let before = &text[..at];
        let value = match before.strip_suffix('"') {
            Some(open) => &before[open.rfind('"').expect("an opening quote")..],
            None => before.rsplit(' ').next().unwrap_or(before),
        };
        stated.push(normalise(value));
    }
    for _ in text.match_indices("Required") {
        stated.push(KeyDefault::Required);
    }
    for _ in text.match_indices("No default") {
        stated.push(KeyDefault::Unset);
    }
    stated
}

/// The value a sentence starts with: a quoted string, a `[…]` list, or a
/// word up to a comma, semicolon, bracket, space or full stop.
fn value_at_start(text: &str) -> &str {
    if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted.find('"').expect("a closing quote");
        return &text[..end + 2];
    }
    if text.starts_with('[') {
        let end = text.find(']').expect("a closing bracket");
        return &text[..=end];
    }
    let end = text
        .char_indices()
        .find(|&(at, c)| {
            matches!(c, ',' | ';' | '(' | ')' | ' ')
                || (c == '.'
                    && text[at + 1..]
                        .chars()
                        .next()
                        .is_none_or(char::is_whitespace))
        })
        .map_or(text.len(), |(at, _)| at);
    &text[..end]
}

/// A default as a document writes it, in the form of [`KeyDefault`].
fn normalise(stated: &str) -> KeyDefault {
    let stated = stated.trim();
    let stated = stated
        .strip_prefix('`')
        .and_then(|inner| inner.strip_suffix('`'))
        .unwrap_or(stated);
    let lower = stated.to_ascii_lowercase();
    if lower.starts_with("required") {
        return KeyDefault::Required;
    }
    if lower == "none" {
        return KeyDefault::Unset;
    }
    if stated.starts_with('[') {
        let parsed: toml::Table =
            toml::from_str(&format!("list = {stated}")).expect("a TOML list of strings");
        let items: Vec<String> = parsed["list"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| format!("{:?}", item.as_str().expect("strings")))
            .collect();
        return KeyDefault::Value(format!("[{}]", items.join(", ")));
    }
    if let Some(unquoted) = stated.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return KeyDefault::Value(unquoted.to_owned());
    }
    for (unit, factor) in [(" KiB", 1024), (" MiB", 1024 * 1024)] {
        if let Some(count) = stated.strip_suffix(unit)
            && let Ok(count) = count.parse::<u64>()
        {
            return KeyDefault::Value((count * factor).to_string());
        }
    }
    let digits = stated.replace('_', "");
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return KeyDefault::Value(digits);
    }
    KeyDefault::Value(stated.to_owned())
}
