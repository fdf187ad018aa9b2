//! `[room.adaptive]`: its defaults, a full table read back exactly, and
//! each refusal, which names the room and the key.

use std::num::NonZeroU32;
use std::time::Duration;

use anteroom_config::{Adaptive, AdaptiveError, Config, ConfigError};

const UPSTREAM: &str = "upstream = \"http://127.0.0.1:3000\"\n";

fn no_env(_: &str) -> Option<String> {
    None
}

/// Room "a" admitting 60 a minute, behind the default 30 s upstream
/// timeout, with `table` as its `[room.adaptive]`.
fn with_adaptive(table: &str) -> String {
    room_file("", 60, &format!("[room.adaptive]\n{table}\n"))
}

/// `top`: top-level keys; `rest`: what follows the room's own keys.
fn room_file(top: &str, admit_per_minute: u32, rest: &str) -> String {
    format!(
        "{UPSTREAM}{top}\n[[room]]\nname = \"a\"\npaths = [\"/a/\"]\ncapacity = 10\n\
         admit_per_minute = {admit_per_minute}\n{rest}"
    )
}

fn adaptive_of(text: &str) -> Adaptive {
    match Config::from_toml(text, no_env) {
        Ok(config) => config.rooms[0].adaptive,
        Err(error) => panic!("{error}\n--- in ---\n{text}"),
    }
}

/// The message of an `Invalid` error.
fn invalid(text: &str) -> String {
    match Config::from_toml(text, no_env) {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}\n--- in ---\n{text}"),
    }
}

fn parse_error(text: &str) -> String {
    match Config::from_toml(text, no_env) {
        Err(ConfigError::Parse(message)) => message,
        other => panic!("expected a Parse error, got {other:?}\n--- in ---\n{text}"),
    }
}

fn per_minute(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).expect("not 0")
}

// ---- defaults ----

#[test]
fn a_room_without_the_table_is_off_with_every_default() {
    let expected = Adaptive {
        enabled: false,
        min_admit_per_minute: per_minute(60),
        latency_p90_ms: 1000,
        max_error_rate: 0.01,
    };
    assert_eq!(adaptive_of(&room_file("", 600, "")), expected);
    assert_eq!(
        adaptive_of(&room_file("", 600, "[room.adaptive]\n")),
        expected
    );
    assert_eq!(Adaptive::off(per_minute(600)), expected);
}

#[test]
fn the_default_floor_is_never_above_the_ceiling() {
    assert_eq!(
        adaptive_of(&room_file("", 20, "")).min_admit_per_minute,
        per_minute(20)
    );
    assert_eq!(
        adaptive_of(&room_file("", 60, "")).min_admit_per_minute,
        per_minute(60)
    );
    assert_eq!(
        Adaptive::off(per_minute(1)).min_admit_per_minute,
        per_minute(1)
    );
}

#[test]
fn each_key_is_optional() {
    let adaptive = adaptive_of(&with_adaptive("enabled = true"));
    assert_eq!(
        adaptive,
        Adaptive {
            enabled: true,
            ..Adaptive::off(per_minute(60))
        }
    );
    let adaptive = adaptive_of(&with_adaptive("max_error_rate = 0.2"));
    assert_eq!(
        adaptive,
        Adaptive {
            max_error_rate: 0.2,
            ..Adaptive::off(per_minute(60))
        }
    );
}

// ---- a full table ----

#[test]
fn a_full_table_is_read_exactly() {
    let text = room_file(
        "",
        600,
        "[room.adaptive]\nenabled = true\nmin_admit_per_minute = 25\n\
         latency_p90_ms = 2500\nmax_error_rate = 0.05\n",
    );
    assert_eq!(
        adaptive_of(&text),
        Adaptive {
            enabled: true,
            min_admit_per_minute: per_minute(25),
            latency_p90_ms: 2500,
            max_error_rate: 0.05,
        }
    );
}

#[test]
fn each_room_has_its_own_table() {
    let text = format!(
        "{}[[room]]\nname = \"b\"\npaths = [\"/b/\"]\ncapacity = 1\nadmit_per_minute = 5\n",
        with_adaptive("enabled = true\nmin_admit_per_minute = 30")
    );
    let config = Config::from_toml(&text, no_env).expect("valid");
    assert!(config.rooms[0].adaptive.enabled);
    assert_eq!(
        config.rooms[0].adaptive.min_admit_per_minute,
        per_minute(30)
    );
    assert_eq!(config.rooms[1].adaptive, Adaptive::off(per_minute(5)));
}

#[test]
fn the_edges_of_each_range_are_accepted() {
    let text = with_adaptive(
        "enabled = true\nmin_admit_per_minute = 1\nlatency_p90_ms = 10\nmax_error_rate = 0.5",
    );
    let adaptive = adaptive_of(&text);
    assert_eq!(adaptive.min_admit_per_minute, per_minute(1));
    assert_eq!(adaptive.latency_p90_ms, 10);
    assert_eq!(adaptive.max_error_rate, 0.5);
    // The floor may equal the ceiling (60): the pace is then pinned.
    let text = room_file(
        "upstream_timeout_seconds = 61",
        60,
        "[room.adaptive]\nmin_admit_per_minute = 60\nlatency_p90_ms = 60000\n",
    );
    let adaptive = adaptive_of(&text);
    assert_eq!(adaptive.min_admit_per_minute, per_minute(60));
    assert_eq!(adaptive.latency_p90_ms, 60_000);
}

// ---- refusals, each naming the room and the key ----

#[test]
fn a_floor_of_zero_is_refused() {
    assert_eq!(
        invalid(&with_adaptive("min_admit_per_minute = 0")),
        "room[0] \"a\": adaptive.min_admit_per_minute: must be at least 1 (got 0)"
    );
}

#[test]
fn a_floor_above_the_ceiling_is_refused() {
    assert_eq!(
        invalid(&with_adaptive("min_admit_per_minute = 61")),
        "room[0] \"a\": adaptive.min_admit_per_minute: 61 is above the room's admit_per_minute \
         (60); the floor must not be above the ceiling"
    );
}

#[test]
fn a_latency_target_out_of_range_is_refused() {
    for latency in ["0", "9", "60001", "5000000000"] {
        let message = invalid(&room_file(
            "upstream_timeout_seconds = 600",
            60,
            &format!("[room.adaptive]\nlatency_p90_ms = {latency}\n"),
        ));
        assert_eq!(
            message,
            format!(
                "room[0] \"a\": adaptive.latency_p90_ms: must be between 10 and 60000 \
                 (got {latency})"
            )
        );
    }
}

#[test]
fn a_latency_target_the_upstream_timeout_would_cut_is_refused() {
    let message = invalid(&with_adaptive("latency_p90_ms = 30000"));
    assert_eq!(
        message,
        "room[0] \"a\": adaptive.latency_p90_ms: 30000 must be below the upstream timeout \
         (30000 ms, upstream_timeout_seconds), or the site's timeout would end the slow \
         requests before the target could be seen"
    );
    assert_eq!(
        adaptive_of(&with_adaptive("latency_p90_ms = 29999")).latency_p90_ms,
        29_999
    );
}

#[test]
fn the_default_latency_target_is_held_to_the_timeout_only_once_turned_on() {
    // A one-second timeout makes the default target (1000 ms) unreachable;
    // a room that does not use adaptive admission is not refused for it.
    let short = "upstream_timeout_seconds = 1";
    assert_eq!(
        adaptive_of(&room_file(short, 60, "")),
        Adaptive::off(per_minute(60))
    );
    let message = invalid(&room_file(short, 60, "[room.adaptive]\nenabled = true\n"));
    assert!(
        message.starts_with("room[0] \"a\": adaptive.latency_p90_ms: 1000 must be below"),
        "{message}"
    );
    let on = room_file(
        short,
        60,
        "[room.adaptive]\nenabled = true\nlatency_p90_ms = 900\n",
    );
    assert_eq!(adaptive_of(&on).latency_p90_ms, 900);
}

#[test]
fn a_written_latency_target_is_held_to_the_timeout_even_while_off() {
    let message = invalid(&room_file(
        "upstream_timeout_seconds = 1",
        60,
        "[room.adaptive]\nenabled = false\nlatency_p90_ms = 1000\n",
    ));
    assert!(
        message.starts_with("room[0] \"a\": adaptive.latency_p90_ms: 1000 must be below"),
        "{message}"
    );
}

#[test]
fn an_error_rate_outside_zero_to_a_half_is_refused() {
    for (written, shown) in [
        ("0.0", "0"),
        ("-0.01", "-0.01"),
        ("0.51", "0.51"),
        ("1.0", "1"),
        ("nan", "NaN"),
        ("inf", "inf"),
        ("-inf", "-inf"),
    ] {
        assert_eq!(
            invalid(&with_adaptive(&format!("max_error_rate = {written}"))),
            format!(
                "room[0] \"a\": adaptive.max_error_rate: must be a number above 0 and at most \
                 0.5 (got {shown})"
            ),
        );
    }
}

#[test]
fn an_error_rate_written_as_an_integer_is_read_as_that_number() {
    let message = invalid(&with_adaptive("max_error_rate = 0"));
    assert!(
        message.starts_with("room[0] \"a\": adaptive.max_error_rate: must be a number above 0"),
        "{message}"
    );
    let message = invalid(&with_adaptive("max_error_rate = 1"));
    assert!(message.ends_with("(got 1)"), "{message}");
}

#[test]
fn the_room_is_named_by_its_place_and_name() {
    let text = format!(
        "{}[[room]]\nname = \"vaccini\"\npaths = [\"/v/\"]\ncapacity = 1\nadmit_per_minute = 5\n\
         [room.adaptive]\nmin_admit_per_minute = 0\n",
        room_file("", 60, "")
    );
    assert!(
        invalid(&text).starts_with("room[1] \"vaccini\": adaptive.min_admit_per_minute: "),
        "{}",
        invalid(&text)
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_by_toml() {
    let message = parse_error(&with_adaptive("min_admit_per_minte = 5"));
    assert!(message.contains("min_admit_per_minte"), "{message}");
    let message = parse_error(&with_adaptive("max_error_rate = \"1%\""));
    assert!(message.contains("max_error_rate"), "{message}");
    let message = parse_error(&with_adaptive("enabled = \"yes\""));
    assert!(message.contains("enabled"), "{message}");
    let message = parse_error(&with_adaptive("min_admit_per_minute = -1"));
    assert!(message.contains("min_admit_per_minute"), "{message}");
}

// ---- the same rules for a value changed later (the admin API) ----

#[test]
fn check_holds_a_changed_value_to_the_files_rules() {
    let ceiling = per_minute(60);
    let timeout = Duration::from_secs(30);
    let base = Adaptive {
        enabled: true,
        ..Adaptive::off(ceiling)
    };
    assert_eq!(base.check(ceiling, timeout), Ok(()));
    let cases = [
        (
            Adaptive {
                min_admit_per_minute: per_minute(61),
                ..base
            },
            "min_admit_per_minute",
        ),
        (
            Adaptive {
                latency_p90_ms: 9,
                ..base
            },
            "latency_p90_ms",
        ),
        (
            Adaptive {
                latency_p90_ms: 30_000,
                ..base
            },
            "latency_p90_ms",
        ),
        (
            Adaptive {
                max_error_rate: f64::NAN,
                ..base
            },
            "max_error_rate",
        ),
        (
            Adaptive {
                max_error_rate: 0.0,
                ..base
            },
            "max_error_rate",
        ),
    ];
    for (adaptive, key) in cases {
        let error = adaptive.check(ceiling, timeout).expect_err(key);
        assert_eq!(error.key(), key);
        assert!(
            error.to_string().starts_with(&format!("{key}: ")),
            "{error}"
        );
    }
}

#[test]
fn check_holds_the_latency_target_to_the_timeout_only_while_on() {
    let ceiling = per_minute(60);
    let one_second = Duration::from_secs(1);
    let off = Adaptive::off(ceiling);
    assert_eq!(off.check(ceiling, one_second), Ok(()));
    let on = Adaptive {
        enabled: true,
        ..off
    };
    assert_eq!(
        on.check(ceiling, one_second),
        Err(AdaptiveError::LatencyNotBelowTimeout {
            latency_ms: 1000,
            upstream_timeout: one_second,
        })
    );
}
