//! Pure invariants of validation, over many inputs.

use anteroom_config::{Config, ConfigError};
use proptest::prelude::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn room_file(name: &str, path: &str, extra: &str) -> String {
    format!(
        "upstream = \"http://127.0.0.1:3000\"\n[[room]]\nname = {name:?}\npaths = [{path:?}]\n\
         capacity = 1\nadmit_per_minute = 1\n{extra}\n"
    )
}

proptest! {
    #[test]
    fn any_valid_name_round_trips(name in "[a-z0-9_-]{1,32}") {
        let config = Config::from_toml(&room_file(&name, "/x", ""), no_env).expect("valid");
        prop_assert!(config.room(&name).is_some());
        prop_assert_eq!(&config.rooms[0].name, &name);
    }

    #[test]
    fn a_name_with_any_other_character_is_rejected(
        prefix in "[a-z0-9_-]{0,10}",
        bad in "[^a-z0-9_\\-]",
        suffix in "[a-z0-9_-]{0,10}",
    ) {
        let name = format!("{prefix}{bad}{suffix}");
        match Config::from_toml(&room_file(&name, "/x", ""), no_env) {
            Err(ConfigError::Invalid(message)) => prop_assert!(message.contains("name must be")),
            // A control character may not even be valid TOML inside quotes.
            Err(ConfigError::Parse(_)) => {}
            other => prop_assert!(false, "accepted {:?}: {:?}", name, other),
        }
    }

    #[test]
    fn paths_are_stored_lowercased(path in "/[A-Za-z0-9/._~%-]{0,40}") {
        prop_assume!(!path.to_ascii_lowercase().starts_with("/_anteroom"));
        let config = Config::from_toml(&room_file("r", &path, ""), no_env).expect("valid");
        prop_assert_eq!(&config.rooms[0].paths[0], &path.to_ascii_lowercase());
    }

    #[test]
    fn burst_is_accepted_exactly_when_it_covers_the_rate(rate in 1u32..1000, burst in 1u32..1000) {
        let text = format!(
            "upstream = \"http://127.0.0.1:3000\"\n[limits]\nper_ip_per_second = {rate}\nper_ip_burst = {burst}\n"
        );
        let result = Config::from_toml(&text, no_env);
        prop_assert_eq!(result.is_ok(), burst >= rate, "{:?}", result);
    }

    #[test]
    fn refresh_is_accepted_exactly_when_shorter_than_arrival(arrival in 5u64..=3600, refresh in 1u64..=60) {
        let extra = format!("arrival_seconds = {arrival}\nrefresh_seconds = {refresh}");
        let result = Config::from_toml(&room_file("r", "/x", &extra), no_env);
        prop_assert_eq!(result.is_ok(), refresh < arrival, "{:?}", result);
    }
}
