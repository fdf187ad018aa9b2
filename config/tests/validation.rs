//! Each rule of the configuration contract: the default it applies or the
//! error it raises, which must name the key.

use std::num::NonZeroU32;
use std::time::Duration;

use anteroom_config::schedule::Schedule;
use anteroom_config::{Backend, Config, ConfigError, OnError, RedisTls, Sink};

const UPSTREAM: &str = "upstream = \"http://127.0.0.1:3000\"\n";
const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn no_env(_: &str) -> Option<String> {
    None
}

fn valid(text: &str) -> Config {
    Config::from_toml(text, no_env).unwrap_or_else(|error| panic!("{error}\n--- in ---\n{text}"))
}

/// The message of an `Invalid` error.
fn invalid(text: &str) -> String {
    match Config::from_toml(text, no_env) {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}\n--- in ---\n{text}"),
    }
}

/// The message of a `Parse` error.
fn parse_error(text: &str) -> String {
    match Config::from_toml(text, no_env) {
        Err(ConfigError::Parse(message)) => message,
        other => panic!("expected a Parse error, got {other:?}\n--- in ---\n{text}"),
    }
}

/// The upstream line, plus one room "a" on `/a/` with `extra` keys.
fn with_room(extra: &str) -> String {
    format!(
        "{UPSTREAM}[[room]]\nname = \"a\"\npaths = [\"/a/\"]\ncapacity = 10\nadmit_per_minute = 60\n{extra}\n"
    )
}

/// A room "a" on `/a/` excluding `/a/static/`, plus one buffer with `extra` keys.
fn with_buffer(extra: &str) -> String {
    format!(
        "{}[[buffer]]\nname = \"b\"\nroom = \"a\"\npath = \"/a/book\"\ndrain_per_second = 5\n{extra}\n",
        with_room("exclude = [\"/a/static/\"]")
    )
}

// ---- defaults ----

#[test]
fn minimal_file_gets_every_default() {
    let config = valid(UPSTREAM);
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9090");
    assert_eq!(config.upstream_timeout, Duration::from_secs(30));
    assert_eq!(config.shutdown_grace, Duration::from_secs(10));
    assert_eq!(config.store.backend, Backend::Memory);
    assert_eq!(config.store.on_error, OnError::Wait);
    assert!(config.secrets.cookie_keys.is_empty());
    assert_eq!(config.secrets.admin_token, None);
    assert_eq!(config.limits.per_ip_per_second.get(), 20);
    assert_eq!(config.limits.per_ip_burst.get(), 40);
    assert_eq!(config.limits.tickets_per_ip_per_minute.get(), 10);
    assert!(config.limits.trusted_proxies.is_empty());
    assert_eq!(config.limits.max_connections, 10_000);
    assert_eq!(config.limits.max_header_bytes, 16 * 1024);
    assert_eq!(config.limits.max_body_bytes, 1024 * 1024);
    assert_eq!(config.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.limits.max_in_flight_upstream, 1024);
    assert_eq!(config.limits.max_tracked_clients, 1_000_000);
    assert_eq!(config.limits.send_timeout, Duration::from_secs(30));
    assert_eq!(config.worker.admin_listen.to_string(), "127.0.0.1:9091");
    assert!(config.rooms.is_empty());
    assert!(config.buffers.is_empty());
}

#[test]
fn room_and_buffer_defaults() {
    let config = valid(&with_buffer(""));
    let room = config.room("a").expect("room a");
    assert!(room.exclude.contains(&"/a/static/".to_owned()));
    assert_eq!(room.session, Duration::from_secs(300));
    assert_eq!(room.arrival, Duration::from_secs(60));
    assert_eq!(room.refresh, Duration::from_secs(5));
    let buffer = &config.buffers[0];
    assert_eq!(buffer.method, http::Method::POST);
    assert_eq!(buffer.max_in_flight.get(), 8);
    assert_eq!(buffer.sink, Sink::Http);

    let room = valid(&with_room("")).rooms.remove(0);
    assert!(room.exclude.is_empty());
}

#[test]
fn redis_backend_defaults_its_url() {
    let config = valid(&format!(
        "{UPSTREAM}[store]\nbackend = \"redis\"\n[secrets]\ncookie_keys = [\"{KEY_A}\"]\n"
    ));
    assert_eq!(
        config.store.backend,
        Backend::Redis {
            url: "redis://127.0.0.1:6379/0".into(),
            tls: RedisTls::default(),
        }
    );
}

#[test]
fn explicit_values_are_kept() {
    let config = valid(&format!(
        "listen = \"[::]:80\"\nadmin_listen = \"127.0.0.1:1\"\n{UPSTREAM}\
         upstream_timeout_seconds = 600\nshutdown_grace_seconds = 0\n\
         [store]\non_error = \"admit\"\n[worker]\nadmin_listen = \"127.0.0.1:2\"\n"
    ));
    assert_eq!(config.listen.to_string(), "[::]:80");
    assert_eq!(config.upstream_timeout, Duration::from_secs(600));
    assert_eq!(config.shutdown_grace, Duration::ZERO);
    assert_eq!(config.store.on_error, OnError::Admit);
    assert_eq!(config.worker.admin_listen.to_string(), "127.0.0.1:2");
}

#[test]
fn room_lookup_by_name() {
    let config = valid(&with_room(""));
    assert!(config.room("a").is_some());
    assert!(config.room("b").is_none());
}

// ---- syntax and unknown keys: toml's own message ----

#[test]
fn unknown_top_level_key() {
    let message = parse_error(&format!("{UPSTREAM}upstream_timeout = 5\n"));
    assert!(message.contains("upstream_timeout"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn unknown_key_in_room() {
    let message = parse_error(&with_room("capacty = 5"));
    assert!(message.contains("capacty"), "{message}");
}

#[test]
fn unknown_key_in_sections() {
    for (section, key) in [
        ("store", "backnd"),
        ("secrets", "cookie_key"),
        ("limits", "per_ip"),
        ("worker", "listen"),
    ] {
        let message = parse_error(&format!("{UPSTREAM}[{section}]\n{key} = 1\n"));
        assert!(message.contains(key), "{message}");
    }
    let message = parse_error(&with_buffer("sinc = \"http\""));
    assert!(message.contains("sinc"), "{message}");
}

#[test]
fn toml_syntax_and_type_errors() {
    let message = parse_error("upstream = \n");
    assert!(message.contains("line 1"), "{message}");
    let message = parse_error(&with_room("session_seconds = \"300\""));
    assert!(message.contains("session_seconds"), "{message}");
    let message = parse_error(&with_room("").replace("capacity = 10", "capacity = -1"));
    assert!(message.contains("capacity"), "{message}");
}

// ---- top level ----

#[test]
fn upstream_is_required() {
    let message = invalid("listen = \"0.0.0.0:8080\"\n");
    assert!(message.starts_with("upstream: is required"), "{message}");
}

#[test]
fn malformed_upstream() {
    assert_eq!(
        invalid("upstream = \"htp://x\""),
        "upstream: \"htp://x\" is not a valid http:// URL"
    );
    for bad in [
        "not a url",
        "127.0.0.1:3000",
        "/relative",
        "http://",
        "http://:80",
    ] {
        let message = invalid(&format!("upstream = \"{bad}\""));
        assert!(message.starts_with("upstream: "), "{message}");
    }
}

#[test]
fn https_upstream_is_not_supported_yet() {
    let message = invalid("upstream = \"https://example.org\"");
    assert!(message.starts_with("upstream: "), "{message}");
    assert!(
        message.contains("https upstreams are not supported yet; terminate TLS in front of"),
        "{message}"
    );
}

#[test]
fn upstream_has_no_path_query_or_credentials() {
    let message = invalid("upstream = \"http://x/app\"");
    assert!(
        message.starts_with("upstream: ") && message.contains("path"),
        "{message}"
    );
    let message = invalid("upstream = \"http://x/?a=1\"");
    assert!(
        message.starts_with("upstream: ") && message.contains("query"),
        "{message}"
    );
    let message = invalid("upstream = \"http://x#top\"");
    assert!(
        message.starts_with("upstream: ") && message.contains("fragment"),
        "{message}"
    );
    let message = invalid("upstream = \"http://user:hunter2@x\"");
    assert!(message.starts_with("upstream: "), "{message}");
    assert!(!message.contains("hunter2"), "password echoed: {message}");
}

#[test]
fn upstream_authority_always_has_a_port() {
    let config = valid("upstream = \"http://site.internal\"");
    assert_eq!(config.upstream.authority, "site.internal:80");
    assert_eq!(config.upstream.uri.to_string(), "http://site.internal:80/");

    let config = valid("upstream = \"http://127.0.0.1:3000/\"");
    assert_eq!(config.upstream.authority, "127.0.0.1:3000");
    assert_eq!(config.upstream.uri.port_u16(), Some(3000));

    let config = valid("upstream = \"http://[::1]:3000\"");
    assert_eq!(config.upstream.authority, "[::1]:3000");

    let config = valid("upstream = \"http://[::1]\"");
    assert_eq!(config.upstream.authority, "[::1]:80");

    let config = valid("upstream = \"HTTP://Site.Internal:8000\"");
    assert_eq!(config.upstream.authority, "site.internal:8000");
}

#[test]
fn upstream_port_must_be_valid() {
    for bad in [
        "http://x:99999",
        "http://x:0",
        "http://x:",
        "http://[::1]:70000",
    ] {
        let message = invalid(&format!("upstream = \"{bad}\""));
        assert!(
            message.starts_with("upstream: ") && message.contains("port"),
            "{bad}: {message}"
        );
    }
}

#[test]
fn bad_listen_addresses() {
    let message = invalid(&format!("listen = \"localhost:8080\"\n{UPSTREAM}"));
    assert!(
        message.starts_with("listen: \"localhost:8080\""),
        "{message}"
    );
    let message = invalid(&format!("admin_listen = \"9090\"\n{UPSTREAM}"));
    assert!(message.starts_with("admin_listen: "), "{message}");
    let message = invalid(&format!("{UPSTREAM}[worker]\nadmin_listen = \"x\"\n"));
    assert!(message.starts_with("worker.admin_listen: "), "{message}");
    let message = invalid(&format!(
        "listen = \"127.0.0.1:9090\"\nadmin_listen = \"127.0.0.1:9090\"\n{UPSTREAM}"
    ));
    assert!(message.starts_with("admin_listen: "), "{message}");
}

#[test]
fn timeouts_out_of_range() {
    let message = invalid(&format!("{UPSTREAM}upstream_timeout_seconds = 0\n"));
    assert_eq!(
        message,
        "upstream_timeout_seconds: must be between 1 and 600 (got 0)"
    );
    let message = invalid(&format!("{UPSTREAM}upstream_timeout_seconds = 601\n"));
    assert!(
        message.starts_with("upstream_timeout_seconds: "),
        "{message}"
    );
    let message = invalid(&format!("{UPSTREAM}shutdown_grace_seconds = 301\n"));
    assert!(message.starts_with("shutdown_grace_seconds: "), "{message}");
}

// ---- store ----

#[test]
fn store_enumerations() {
    let message = invalid(&format!("{UPSTREAM}[store]\nbackend = \"postgres\"\n"));
    assert!(message.starts_with("store.backend: "), "{message}");
    let message = invalid(&format!("{UPSTREAM}[store]\non_error = \"panic\"\n"));
    assert!(message.starts_with("store.on_error: "), "{message}");
}

#[test]
fn min_replicas_acked_is_a_count_of_replicas_redis_has() {
    let redis = |value: &str| {
        format!(
            "{UPSTREAM}[store]\nbackend = \"redis\"\nmin_replicas_acked = {value}\n\
             [secrets]\ncookie_keys = [\"{KEY_A}\"]\n"
        )
    };
    assert_eq!(
        valid(&redis("2")).store.min_replicas_acked.map(|n| n.get()),
        Some(2)
    );
    assert_eq!(valid(&redis("0")).store.min_replicas_acked, None);
    for bad in ["11", "4294967297"] {
        let message = invalid(&redis(bad));
        assert!(
            message.starts_with("store.min_replicas_acked: "),
            "{bad}: {message}"
        );
    }
    let message = invalid(&format!("{UPSTREAM}[store]\nmin_replicas_acked = 1\n"));
    assert!(
        message.starts_with("store.min_replicas_acked: 1 needs backend = \"redis\""),
        "{message}"
    );
    let memory = valid(&format!("{UPSTREAM}[store]\nmin_replicas_acked = 0\n"));
    assert_eq!(memory.store.min_replicas_acked, None);
}

#[test]
fn redis_url_must_be_a_redis_url() {
    let redis = |url: &str| {
        format!(
            "{UPSTREAM}[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
             [secrets]\ncookie_keys = [\"{KEY_A}\"]\n"
        )
    };
    for bad in [
        "http://127.0.0.1:6379",
        "127.0.0.1:6379",
        "redis://",
        "unix://",
        "rediss://127.0.0.1:6380/0#insecure",
    ] {
        let message = invalid(&redis(bad));
        assert!(message.starts_with("store.redis_url: "), "{bad}: {message}");
    }
    for good in [
        "redis://127.0.0.1:6379/0",
        "rediss://user:secret@cache.internal:6380/1",
        "unix:///run/redis/redis.sock",
    ] {
        let config = valid(&redis(good));
        assert_eq!(
            config.store.backend,
            Backend::Redis {
                url: good.into(),
                tls: RedisTls::default(),
            }
        );
    }
}

#[test]
fn redis_url_is_ignored_with_the_memory_backend() {
    let config = valid(&format!("{UPSTREAM}[store]\nredis_url = \"not a url\"\n"));
    assert_eq!(config.store.backend, Backend::Memory);
}

#[test]
fn backend_debug_hides_the_redis_password() {
    let config = valid(&format!(
        "{UPSTREAM}[store]\nbackend = \"redis\"\nredis_url = \"redis://:hunter2@cache:6379/0\"\n\
         [secrets]\ncookie_keys = [\"{KEY_A}\"]\n"
    ));
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("cache:6379"), "{debug}");
}

// ---- secrets ----

#[test]
fn redis_backend_needs_a_cookie_key() {
    let text = format!("{UPSTREAM}[store]\nbackend = \"redis\"\n");
    assert_eq!(
        invalid(&text),
        "secrets.cookie_keys: the redis backend needs at least one cookie key \
         (or ANTEROOM_COOKIE_KEYS)"
    );
    // ... which the environment can supply.
    let config = Config::from_toml(&text, |name| {
        (name == "ANTEROOM_COOKIE_KEYS").then(|| KEY_A.to_owned())
    })
    .expect("valid with the env key");
    assert_eq!(config.secrets.cookie_keys, [KEY_A]);
}

#[test]
fn short_cookie_key() {
    let message = invalid(&format!(
        "{UPSTREAM}[secrets]\ncookie_keys = [\"{KEY_A}\", \"too-short\"]\n"
    ));
    assert!(message.starts_with("secrets.cookie_keys[1]: "), "{message}");
    assert!(message.contains("32 characters"), "{message}");
    assert!(!message.contains("too-short"), "secret echoed: {message}");

    let error = Config::from_toml(UPSTREAM, |name| {
        (name == "ANTEROOM_COOKIE_KEYS").then(|| "short".to_owned())
    })
    .expect_err("short env key");
    assert!(
        error.to_string().starts_with("ANTEROOM_COOKIE_KEYS"),
        "{error}"
    );
}

#[test]
fn env_cookie_keys_replace_the_file() {
    let text = format!("{UPSTREAM}[secrets]\ncookie_keys = [\"{KEY_A}\"]\n");
    let config = Config::from_toml(&text, |name| {
        (name == "ANTEROOM_COOKIE_KEYS").then(|| format!(" {KEY_B} ,, {KEY_A},"))
    })
    .expect("valid");
    assert_eq!(config.secrets.cookie_keys, [KEY_B, KEY_A]);

    // Set but empty (or only commas): the file's list stays.
    for empty in ["", " , ,"] {
        let config = Config::from_toml(&text, |name| {
            (name == "ANTEROOM_COOKIE_KEYS").then(|| empty.to_owned())
        })
        .expect("valid");
        assert_eq!(config.secrets.cookie_keys, [KEY_A]);
    }
}

#[test]
fn env_admin_token_replaces_the_file() {
    let text = format!("{UPSTREAM}[secrets]\nadmin_token = \"file-token-0123456789\"\n");
    assert_eq!(
        valid(&text).secrets.admin_token.as_deref(),
        Some("file-token-0123456789")
    );
    let config = Config::from_toml(&text, |name| {
        (name == "ANTEROOM_ADMIN_TOKEN").then(|| "env-token-0123456789\n".to_owned())
    })
    .expect("valid");
    assert_eq!(
        config.secrets.admin_token.as_deref(),
        Some("env-token-0123456789")
    );
    let config = Config::from_toml(&text, |name| {
        (name == "ANTEROOM_ADMIN_TOKEN").then(String::new)
    })
    .expect("valid");
    assert_eq!(
        config.secrets.admin_token.as_deref(),
        Some("file-token-0123456789")
    );
    let config = Config::from_toml(UPSTREAM, |name| {
        (name == "ANTEROOM_ADMIN_TOKEN").then(|| "env-token-0123456789".to_owned())
    })
    .expect("valid");
    assert_eq!(
        config.secrets.admin_token.as_deref(),
        Some("env-token-0123456789")
    );
}

#[test]
fn short_admin_token() {
    let message = invalid(&format!("{UPSTREAM}[secrets]\nadmin_token = \"hunter2\"\n"));
    assert!(message.starts_with("secrets.admin_token: "), "{message}");
    assert!(!message.contains("hunter2"), "secret echoed: {message}");
    let error = Config::from_toml(UPSTREAM, |name| {
        (name == "ANTEROOM_ADMIN_TOKEN").then(|| "short".to_owned())
    })
    .expect_err("short env token");
    assert!(
        error.to_string().starts_with("ANTEROOM_ADMIN_TOKEN: "),
        "{error}"
    );
}

#[test]
fn secrets_debug_is_redacted() {
    let config = valid(&format!(
        "{UPSTREAM}[secrets]\ncookie_keys = [\"{KEY_A}\", \"{KEY_B}\"]\n\
         admin_token = \"token-0123456789abcdef\"\n"
    ));
    let debug = format!("{:?}", config.secrets);
    assert!(!debug.contains(KEY_A) && !debug.contains(KEY_B), "{debug}");
    assert!(!debug.contains("token-0123456789abcdef"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(KEY_A) && !debug.contains("token-0123"),
        "{debug}"
    );
}

// ---- limits ----

#[test]
fn burst_below_rate() {
    let message = invalid(&format!(
        "{UPSTREAM}[limits]\nper_ip_per_second = 50\nper_ip_burst = 10\n"
    ));
    assert!(message.starts_with("limits.per_ip_burst: "), "{message}");
    assert!(message.contains("per_ip_per_second"), "{message}");
    // Equal is fine.
    let config = valid(&format!(
        "{UPSTREAM}[limits]\nper_ip_per_second = 50\nper_ip_burst = 50\n"
    ));
    assert_eq!(config.limits.per_ip_burst.get(), 50);
}

#[test]
fn zero_limits() {
    for key in ["per_ip_per_second", "tickets_per_ip_per_minute"] {
        let message = invalid(&format!("{UPSTREAM}[limits]\n{key} = 0\n"));
        assert_eq!(message, format!("limits.{key}: must be at least 1"));
    }
}

#[test]
fn trusted_proxies_accept_networks_and_bare_addresses() {
    let config = valid(&format!(
        "{UPSTREAM}[limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.1.2.3\", \"fd00::/8\", \"::1\"]\n"
    ));
    let proxies: Vec<String> = config
        .limits
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        proxies,
        ["10.0.0.0/8", "10.1.2.3/32", "fd00::/8", "::1/128"]
    );
}

#[test]
fn bad_trusted_proxy() {
    let message = invalid(&format!(
        "{UPSTREAM}[limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.internal\"]\n"
    ));
    assert!(
        message.starts_with("limits.trusted_proxies[1]: \"proxy.internal\""),
        "{message}"
    );
}

// ---- rooms ----

#[test]
fn zero_capacity() {
    let text = with_room("").replace("capacity = 10", "capacity = 0");
    assert_eq!(invalid(&text), "room[0] \"a\": capacity must be at least 1");
    let text = with_room("").replace("admit_per_minute = 60", "admit_per_minute = 0");
    assert_eq!(
        invalid(&text),
        "room[0] \"a\": admit_per_minute must be at least 1"
    );
}

#[test]
fn required_room_keys() {
    let message = invalid(&with_room("").replace("capacity = 10\n", ""));
    assert_eq!(message, "room[0] \"a\": capacity is required");
    let message = invalid(&with_room("").replace("paths = [\"/a/\"]\n", ""));
    assert_eq!(message, "room[0] \"a\": paths is required");
    let message = invalid(&with_room("").replace("name = \"a\"\n", ""));
    assert_eq!(message, "room[0]: name is required");
    let message = invalid(&with_room("").replace("[\"/a/\"]", "[]"));
    assert!(message.starts_with("room[0] \"a\": paths "), "{message}");
}

#[test]
fn bad_room_name() {
    for bad in ["Vaccini", "", "has space", "caffè", "a/b", &"x".repeat(33)] {
        let text = with_room("").replace("name = \"a\"", &format!("name = \"{bad}\""));
        let message = invalid(&text);
        assert!(message.starts_with("room[0] "), "{message}");
        assert!(
            message.contains("name must be 1 to 32 characters"),
            "{message}"
        );
    }
}

#[test]
fn duplicate_room_name() {
    let text = format!(
        "{}[[room]]\nname = \"a\"\npaths = [\"/b/\"]\ncapacity = 1\nadmit_per_minute = 1\n",
        with_room("")
    );
    assert_eq!(
        invalid(&text),
        "room[1] \"a\": name \"a\" is already used by room[0]"
    );
}

#[test]
fn overlapping_room_paths() {
    let text = format!(
        "{UPSTREAM}\
         [[room]]\nname = \"a\"\npaths = [\"/x\", \"/api/\"]\ncapacity = 1\nadmit_per_minute = 1\n\
         [[room]]\nname = \"b\"\npaths = [\"/API/v1/\"]\ncapacity = 1\nadmit_per_minute = 1\n"
    );
    assert_eq!(
        invalid(&text),
        "room \"a\" paths \"/api/\" overlaps room \"b\" paths \"/api/v1/\""
    );
    // Same the other way round: the shorter prefix in the later room.
    let text = format!(
        "{UPSTREAM}\
         [[room]]\nname = \"a\"\npaths = [\"/api/v1/\"]\ncapacity = 1\nadmit_per_minute = 1\n\
         [[room]]\nname = \"b\"\npaths = [\"/api/\"]\ncapacity = 1\nadmit_per_minute = 1\n"
    );
    assert!(invalid(&text).contains("overlaps"));
}

#[test]
fn paths_within_one_room_may_overlap() {
    let config = valid(&with_room("").replace("[\"/a/\"]", "[\"/a/\", \"/a/b/\", \"/a/\"]"));
    assert_eq!(config.rooms[0].paths.len(), 3);
    // Disjoint rooms are fine.
    let text = format!(
        "{}[[room]]\nname = \"b\"\npaths = [\"/b/\"]\ncapacity = 1\nadmit_per_minute = 1\n",
        with_room("")
    );
    assert_eq!(valid(&text).rooms.len(), 2);
}

#[test]
fn room_paths_are_lowercased() {
    let config = valid(
        &with_room("exclude = [\"/Prenota/Static/\"]").replace("[\"/a/\"]", "[\"/Prenota\"]"),
    );
    assert_eq!(config.rooms[0].paths, ["/prenota"]);
    assert_eq!(config.rooms[0].exclude, ["/prenota/static/"]);
}

#[test]
fn bad_room_paths() {
    let message = invalid(&with_room("").replace("[\"/a/\"]", "[\"/a/\", \"api/\"]"));
    assert!(
        message.starts_with("room[0] \"a\": paths[1]: \"api/\""),
        "{message}"
    );
    let message = invalid(&with_room("").replace("[\"/a/\"]", "[\"/_Anteroom/x\"]"));
    assert!(
        message.starts_with("room[0] \"a\": paths[0]: "),
        "{message}"
    );
    assert!(message.contains("/_anteroom"), "{message}");
    let message = invalid(&with_room("").replace("[\"/a/\"]", "[\"/a b\"]"));
    assert!(
        message.starts_with("room[0] \"a\": paths[0]: "),
        "{message}"
    );
    let message = invalid(&with_room("").replace("[\"/a/\"]", "[\"/a?x=1\"]"));
    assert!(
        message.starts_with("room[0] \"a\": paths[0]: "),
        "{message}"
    );
}

#[test]
fn exclude_must_lie_under_the_rooms_paths() {
    let message = invalid(&with_room("exclude = [\"/static/\"]"));
    assert!(
        message.starts_with("room[0] \"a\": exclude[0]: \"/static/\""),
        "{message}"
    );
    let message = invalid(&with_room("exclude = [\"static\"]"));
    assert!(
        message.starts_with("room[0] \"a\": exclude[0]: "),
        "{message}"
    );
}

#[test]
fn room_seconds_out_of_range() {
    for (key, value) in [
        ("session_seconds", 9),
        ("session_seconds", 86_401),
        ("arrival_seconds", 4),
        ("arrival_seconds", 3_601),
        ("refresh_seconds", 0),
        ("refresh_seconds", 61),
    ] {
        let message = invalid(&with_room(&format!("{key} = {value}")));
        assert!(
            message.starts_with(&format!("room[0] \"a\": {key} must be between")),
            "{message}"
        );
    }
}

#[test]
fn refresh_must_be_shorter_than_arrival() {
    let message = invalid(&with_room("arrival_seconds = 10\nrefresh_seconds = 10"));
    assert_eq!(
        message,
        "room[0] \"a\": refresh_seconds (10) must be less than arrival_seconds (10)"
    );
    let message = invalid(&with_room("arrival_seconds = 5"));
    assert!(message.contains("refresh_seconds (5)"), "{message}");
    let config = valid(&with_room("arrival_seconds = 10\nrefresh_seconds = 9"));
    assert_eq!(config.rooms[0].refresh, Duration::from_secs(9));
}

// ---- a room's schedule and the time zone ----

/// `pre_queue_from`, `opens_at` and `closes_at` of the contract's example,
/// as milliseconds since the Unix epoch.
const PRE_QUEUE_FROM: u64 = 1_612_159_200_000; // 2021-02-01T07:00:00+01:00
const OPENS_AT: u64 = 1_612_177_200_000; // 2021-02-01T12:00:00+01:00
const CLOSES_AT: u64 = 1_612_206_000_000; // 2021-02-01T20:00:00+01:00

#[test]
fn time_zone_defaults_to_rome_and_can_be_set() {
    assert_eq!(valid(UPSTREAM).time_zone.iana_name(), Some("Europe/Rome"));
    let config = valid(&format!("time_zone = \"America/New_York\"\n{UPSTREAM}"));
    assert_eq!(config.time_zone.iana_name(), Some("America/New_York"));
}

#[test]
fn unknown_time_zone_is_refused_by_key_and_value() {
    for bad in ["Europe/Atlantis", "+01:00", ""] {
        let message = invalid(&format!("time_zone = \"{bad}\"\n{UPSTREAM}"));
        assert!(
            message.starts_with(&format!("time_zone: unknown time zone \"{bad}\"")),
            "{message}"
        );
    }
}

#[test]
fn a_room_has_no_schedule_by_default() {
    let room = valid(&with_room("")).rooms.remove(0);
    assert_eq!(room.schedule, Schedule::default());
    assert!(room.schedule.is_empty());
}

#[test]
fn a_full_schedule_is_read_to_the_millisecond() {
    let room = valid(&with_room(
        "pre_queue_from = \"2021-02-01T07:00:00+01:00\"\n\
         opens_at = \"2021-02-01T12:00:00+01:00\"\n\
         closes_at = \"2021-02-01T20:00:00+01:00\"",
    ))
    .rooms
    .remove(0);
    assert_eq!(
        room.schedule,
        Schedule {
            pre_queue_from: Some(PRE_QUEUE_FROM),
            opens_at: Some(OPENS_AT),
            closes_at: Some(CLOSES_AT),
        }
    );
}

#[test]
fn each_time_is_optional_but_a_pre_queue_needs_an_opening() {
    let schedule = |extra: &str| valid(&with_room(extra)).rooms.remove(0).schedule;
    let opens = schedule("opens_at = \"2021-02-01T12:00:00+01:00\"");
    assert_eq!(opens.opens_at, Some(OPENS_AT));
    assert_eq!((opens.pre_queue_from, opens.closes_at), (None, None));
    let closes = schedule("closes_at = \"2021-02-01T20:00:00+01:00\"");
    assert_eq!(closes.closes_at, Some(CLOSES_AT));
    assert_eq!((closes.pre_queue_from, closes.opens_at), (None, None));

    let message = invalid(&with_room("pre_queue_from = \"2021-02-01T07:00:00+01:00\""));
    assert!(
        message.starts_with("room[0] \"a\": pre_queue_from needs opens_at"),
        "{message}"
    );
}

#[test]
fn times_in_utc_and_unquoted_toml_times_are_the_same_instant() {
    let opens_at = |value: &str| {
        valid(&with_room(&format!("opens_at = {value}")))
            .rooms
            .remove(0)
            .schedule
            .opens_at
    };
    assert_eq!(opens_at("\"2021-02-01T11:00:00Z\""), Some(OPENS_AT));
    assert_eq!(opens_at("\"2021-02-01T11:00:00.000z\""), Some(OPENS_AT));
    assert_eq!(opens_at("\"2021-02-01T06:00:00-05:00\""), Some(OPENS_AT));
    // TOML's own offset date-time, without quotes.
    assert_eq!(opens_at("2021-02-01T12:00:00+01:00"), Some(OPENS_AT));
    assert_eq!(opens_at("2021-02-01T11:00:00Z"), Some(OPENS_AT));
}

#[test]
fn a_time_without_an_offset_is_refused() {
    for key in ["pre_queue_from", "opens_at", "closes_at"] {
        // Quoted, and as TOML's local date-time without quotes.
        for value in ["\"2021-02-01T12:00:00\"", "2021-02-01T12:00:00"] {
            let message = invalid(&with_room(&format!("{key} = {value}")));
            assert!(
                message.starts_with(&format!(
                    "room[0] \"a\": {key}: \"2021-02-01T12:00:00\" is not an RFC 3339 time \
                     with an offset"
                )),
                "{message}"
            );
            assert!(message.contains("offset component"), "{message}");
        }
    }
}

#[test]
fn malformed_times_are_refused_naming_the_room_and_the_key() {
    for bad in [
        "tomorrow at noon",
        "2021-02-01",
        "2021-02-30T12:00:00+01:00",
        "2021-02-01 12:00",
        "",
    ] {
        let message = invalid(&with_room(&format!("closes_at = \"{bad}\"")));
        assert!(
            message.starts_with(&format!(
                "room[0] \"a\": closes_at: \"{bad}\" is not an RFC 3339 time with an offset"
            )),
            "{message}"
        );
    }
    let message = invalid(&with_room("opens_at = \"1969-12-31T23:00:00Z\""));
    assert_eq!(
        message,
        "room[0] \"a\": opens_at: \"1969-12-31T23:00:00Z\" is before 1970"
    );
    let message = invalid(&with_room("opens_at = 1612177200"));
    assert!(
        message.starts_with("room[0] \"a\": opens_at: must be an RFC 3339 time with an offset"),
        "{message}"
    );
    // The second room is named by its own index.
    let text = format!(
        "{}[[room]]\nname = \"b\"\npaths = [\"/b/\"]\ncapacity = 1\nadmit_per_minute = 1\n\
         pre_queue_from = \"soon\"\n",
        with_room("")
    );
    assert!(
        invalid(&text).starts_with("room[1] \"b\": pre_queue_from: \"soon\""),
        "{text}"
    );
}

#[test]
fn the_schedule_must_be_in_order() {
    let message = invalid(&with_room(
        "pre_queue_from = \"2021-02-01T12:00:00+01:00\"\n\
         opens_at = \"2021-02-01T11:00:00Z\"",
    ));
    assert_eq!(
        message,
        "room[0] \"a\": opens_at must come after pre_queue_from"
    );
    let message = invalid(&with_room(
        "opens_at = \"2021-02-01T12:00:00+01:00\"\n\
         closes_at = \"2021-02-01T07:00:00+01:00\"",
    ));
    assert_eq!(message, "room[0] \"a\": closes_at must come after opens_at");
    // A pre-queue and a closing without an opening between them.
    let message = invalid(&with_room(
        "pre_queue_from = \"2021-02-01T07:00:00+01:00\"\n\
         closes_at = \"2021-02-01T20:00:00+01:00\"",
    ));
    assert!(
        message.starts_with("room[0] \"a\": pre_queue_from needs opens_at"),
        "{message}"
    );
}

#[test]
fn times_in_the_past_are_accepted() {
    // A gateway restarted after the opening is started with the same file.
    let room = valid(&with_room(
        "pre_queue_from = \"2001-02-01T07:00:00+01:00\"\n\
         opens_at = \"2001-02-01T12:00:00+01:00\"\n\
         closes_at = \"2001-02-01T20:00:00+01:00\"",
    ))
    .rooms
    .remove(0);
    assert!(room.schedule.closes_at.is_some());
}

// ---- buffers ----

#[test]
fn buffer_with_unknown_room() {
    let message = invalid(&with_buffer("").replace("room = \"a\"", "room = \"nope\""));
    assert_eq!(
        message,
        "buffer[0] \"b\": room \"nope\" does not name any [[room]]"
    );
}

#[test]
fn buffer_path_outside_the_room() {
    let message = invalid(&with_buffer("").replace("/a/book", "/elsewhere/book"));
    assert!(
        message.starts_with("buffer[0] \"b\": path \"/elsewhere/book\""),
        "{message}"
    );
    let message = invalid(&with_buffer("").replace("/a/book", "/a/static/book"));
    assert!(message.starts_with("buffer[0] \"b\": path "), "{message}");
    assert!(message.contains("exclude"), "{message}");
    let message = invalid(&with_buffer("").replace("/a/book", "a/book"));
    assert!(message.starts_with("buffer[0] \"b\": path "), "{message}");
}

#[test]
fn buffer_path_matches_case_insensitively_and_is_lowercased() {
    let config = valid(&with_buffer("").replace("/a/book", "/A/Book"));
    assert_eq!(config.buffers[0].path, "/a/book");
}

#[test]
fn buffer_methods() {
    let message = invalid(&with_buffer("method = \"GET\""));
    assert_eq!(
        message,
        "buffer[0] \"b\": method \"GET\" must be POST, PUT, PATCH or DELETE"
    );
    for (written, method) in [
        ("PUT", http::Method::PUT),
        ("patch", http::Method::PATCH),
        ("DELETE", http::Method::DELETE),
    ] {
        let config = valid(&with_buffer(&format!("method = \"{written}\"")));
        assert_eq!(config.buffers[0].method, method);
    }
}

#[test]
fn buffer_required_and_nonzero_keys() {
    let message = invalid(&with_buffer("").replace("drain_per_second = 5\n", ""));
    assert_eq!(message, "buffer[0] \"b\": drain_per_second is required");
    let message = invalid(&with_buffer("").replace("drain_per_second = 5", "drain_per_second = 0"));
    assert_eq!(
        message,
        "buffer[0] \"b\": drain_per_second must be at least 1"
    );
    let message = invalid(&with_buffer("max_in_flight = 0"));
    assert_eq!(message, "buffer[0] \"b\": max_in_flight must be at least 1");
    let message = invalid(&with_buffer("").replace("name = \"b\"", "name = \"B\""));
    assert!(
        message.starts_with("buffer[0] \"B\": name must be"),
        "{message}"
    );
}

#[test]
fn duplicate_buffers() {
    let second =
        "[[buffer]]\nname = \"b\"\nroom = \"a\"\npath = \"/a/other\"\ndrain_per_second = 1\n";
    let message = invalid(&format!("{}{second}", with_buffer("")));
    assert_eq!(
        message,
        "buffer[1] \"b\": name \"b\" is already used by buffer[0]"
    );

    let second =
        "[[buffer]]\nname = \"c\"\nroom = \"a\"\npath = \"/A/BOOK\"\ndrain_per_second = 1\n";
    let message = invalid(&format!("{}{second}", with_buffer("")));
    assert_eq!(
        message,
        "buffer[1] \"c\": method POST and path \"/a/book\" are already used by buffer[0]"
    );
    // Same path, another method: fine.
    let config = valid(&format!("{}{second}method = \"PUT\"\n", with_buffer("")));
    assert_eq!(config.buffers.len(), 2);
}

#[test]
fn postgres_sink_needs_url_and_statement() {
    let message = invalid(&with_buffer(
        "sink = \"postgres\"\npostgres_url = \"postgres://db/bookings\"",
    ));
    assert_eq!(
        message,
        "buffer[0] \"b\": sink \"postgres\" needs statement"
    );
    let message = invalid(&with_buffer(
        "sink = \"postgres\"\nstatement = \"SELECT 1\"",
    ));
    assert_eq!(
        message,
        "buffer[0] \"b\": sink \"postgres\" needs postgres_url"
    );
    let message = invalid(&with_buffer(
        "sink = \"postgres\"\npostgres_url = \"mysql://db\"\nstatement = \"SELECT 1\"",
    ));
    assert!(
        message.starts_with("buffer[0] \"b\": postgres_url"),
        "{message}"
    );

    let config = valid(&with_buffer(
        "sink = \"postgres\"\npostgres_url = \"postgres://app:hunter2@db/bookings\"\n\
         statement = \"INSERT INTO bookings VALUES ($1)\"",
    ));
    assert_eq!(
        config.buffers[0].sink,
        Sink::Postgres {
            url: "postgres://app:hunter2@db/bookings".into(),
            statement: "INSERT INTO bookings VALUES ($1)".into(),
            params: Vec::new(),
        }
    );
    let debug = format!("{:?}", config.buffers[0]);
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn http_sink_rejects_postgres_keys() {
    let message = invalid(&with_buffer("statement = \"SELECT 1\""));
    assert!(
        message.starts_with("buffer[0] \"b\": statement "),
        "{message}"
    );
    let message = invalid(&with_buffer("postgres_url = \"postgres://db\""));
    assert!(
        message.starts_with("buffer[0] \"b\": postgres_url "),
        "{message}"
    );
    let message = invalid(&with_buffer("sink = \"kafka\""));
    assert!(
        message.starts_with("buffer[0] \"b\": sink \"kafka\""),
        "{message}"
    );
}

#[test]
fn nonzero_fields_carry_the_written_value() {
    let config = valid(&with_buffer("max_in_flight = 3"));
    assert_eq!(
        config.buffers[0].max_in_flight,
        NonZeroU32::new(3).expect("3")
    );
}

#[test]
fn resource_bounds_are_checked_by_key() {
    for (line, key) in [
        ("max_connections = 0", "limits.max_connections: "),
        ("max_header_bytes = 100", "limits.max_header_bytes: "),
        ("max_body_bytes = 99999999999999", "limits.max_body_bytes: "),
        (
            "header_read_timeout_seconds = 0",
            "limits.header_read_timeout_seconds: ",
        ),
        (
            "max_in_flight_upstream = 0",
            "limits.max_in_flight_upstream: ",
        ),
        ("max_tracked_clients = 5", "limits.max_tracked_clients: "),
    ] {
        let message = invalid(&format!("{UPSTREAM}[limits]\n{line}\n"));
        assert!(message.starts_with(key), "{line}: {message}");
        assert!(message.contains("must be between"), "{line}: {message}");
    }
    let config = valid(&format!(
        "{UPSTREAM}[limits]\nmax_connections = 5\nmax_body_bytes = 0\nheader_read_timeout_seconds = 3\n"
    ));
    assert_eq!(config.limits.max_connections, 5);
    assert_eq!(config.limits.max_body_bytes, 0);
    assert_eq!(config.limits.header_read_timeout, Duration::from_secs(3));
}

#[test]
fn cookie_security_setting() {
    assert_eq!(
        valid(UPSTREAM).cookies.secure,
        anteroom_config::CookieSecure::Auto
    );
    let always = valid(&format!("{UPSTREAM}[cookies]\nsecure = \"always\"\n"));
    assert_eq!(always.cookies.secure, anteroom_config::CookieSecure::Always);
    let message = invalid(&format!("{UPSTREAM}[cookies]\nsecure = \"sometimes\"\n"));
    assert!(message.starts_with("cookies.secure: "), "{message}");
}

#[test]
fn buffer_delivery_defaults() {
    let config = valid(&with_buffer(""));
    let buffer = &config.buffers[0];
    assert_eq!(buffer.max_depth, 100_000);
    assert_eq!(buffer.max_per_pass, 10);
    assert_eq!(
        buffer.content_types,
        ["application/json", "application/x-www-form-urlencoded"]
    );
    assert_eq!(buffer.max_attempts, 8);
    assert_eq!(buffer.retry_initial, Duration::from_millis(500));
    assert_eq!(buffer.retry_max, Duration::from_secs(60));
    assert_eq!(buffer.sink_timeout, Duration::from_secs(10));
    assert_eq!(buffer.reclaim_after, Duration::from_secs(30));
    assert_eq!(buffer.result_for, Duration::from_secs(86_400));
}

#[test]
fn buffer_delivery_keys_are_checked() {
    for (line, key) in [
        ("max_depth = 0", "max_depth"),
        ("max_attempts = 0", "max_attempts"),
        ("max_attempts = 101", "max_attempts"),
        ("retry_initial_ms = 1", "retry_initial_ms"),
        ("retry_max_seconds = 0", "retry_max_seconds"),
        ("sink_timeout_seconds = 0", "sink_timeout_seconds"),
        ("reclaim_after_seconds = 1", "reclaim_after_seconds"),
        ("result_seconds = 59", "result_seconds"),
    ] {
        let message = invalid(&with_buffer(line));
        assert!(
            message.starts_with(&format!("buffer[0] \"b\": {key} ")),
            "{line}: {message}"
        );
    }
    let message = invalid(&with_buffer(
        "sink_timeout_seconds = 30\nreclaim_after_seconds = 30",
    ));
    assert!(
        message
            .contains("reclaim_after_seconds (30) must be longer than sink_timeout_seconds (30)"),
        "{message}"
    );
    let message = invalid(&with_buffer(
        "retry_initial_ms = 5000\nretry_max_seconds = 1",
    ));
    assert!(message.contains("retry_initial_ms"), "{message}");
}

#[test]
fn a_pass_may_hold_at_most_the_whole_buffer() {
    let config = valid(&with_buffer("max_depth = 50\nmax_per_pass = 50"));
    assert_eq!(config.buffers[0].max_per_pass, 50);
    // Left out, the default is cut to a small buffer's depth.
    let config = valid(&with_buffer("max_depth = 3"));
    assert_eq!(config.buffers[0].max_per_pass, 3);
    for line in ["max_per_pass = 0", "max_depth = 50\nmax_per_pass = 51"] {
        let message = invalid(&with_buffer(line));
        assert!(
            message.starts_with("buffer[0] \"b\": max_per_pass must be between 1 and max_depth"),
            "{line}: {message}"
        );
    }
    let message = invalid(&with_buffer("max_depth = 50\nmax_per_pass = 51"));
    assert!(message.contains("(50) (got 51)"), "{message}");
}

#[test]
fn buffer_content_types() {
    let config = valid(&with_buffer("content_types = [\"Application/JSON \"]"));
    assert_eq!(config.buffers[0].content_types, ["application/json"]);
    let message = invalid(&with_buffer("content_types = []"));
    assert!(message.contains("content_types"), "{message}");
    let message = invalid(&with_buffer(
        "content_types = [\"application/json; charset=utf-8\"]",
    ));
    assert!(message.contains("is not a media type"), "{message}");
}

#[test]
fn postgres_params() {
    let postgres = "sink = \"postgres\"\npostgres_url = \"postgres://db/b\"\n\
                    statement = \"SELECT $1, $2\"\n";
    let config = valid(&with_buffer(&format!(
        "{postgres}params = [\"patient.name\", \"$idempotency_key\"]"
    )));
    let Sink::Postgres { params, .. } = &config.buffers[0].sink else {
        panic!("postgres sink");
    };
    assert_eq!(params, &["patient.name", "$idempotency_key"]);
    let message = invalid(&with_buffer(&format!("{postgres}params = [\"$nope\"]")));
    assert!(message.contains("\"$nope\" is not one of"), "{message}");
    let message = invalid(&with_buffer(&format!("{postgres}params = [\"a..b\"]")));
    assert!(message.contains("dotted JSON path"), "{message}");
    let message = invalid(&with_buffer("params = [\"a\"]"));
    assert!(message.contains("params is only for sink"), "{message}");
}

#[test]
fn log_format() {
    let base = with_buffer("");
    assert_eq!(valid(&base).log_format, anteroom_config::LogFormat::Text);
    let json = format!("log_format = \"json\"\n{base}");
    assert_eq!(valid(&json).log_format, anteroom_config::LogFormat::Json);
    let message = invalid(&format!("log_format = \"xml\"\n{base}"));
    assert!(message.starts_with("log_format: \"xml\""), "{message}");
    let from_env = Config::from_toml(&base, |name| {
        (name == "ANTEROOM_LOG_FORMAT").then(|| "json".to_owned())
    })
    .expect("valid");
    assert_eq!(from_env.log_format, anteroom_config::LogFormat::Json);
}

// ---- [pages] ----

#[test]
fn pages_default_to_the_built_in_ones() {
    let config = valid(UPSTREAM);
    assert_eq!(config.pages.dir, None);
    assert!(config.pages.files.is_empty());
    let config = valid(&format!("{UPSTREAM}[pages]\n"));
    assert_eq!(config.pages.dir, None);
}

/// The page files of `dir` are read (templates and style directly in it,
/// language files under `lang/`); other files are left alone. A relative
/// `dir` starts from the config file's directory.
#[test]
fn pages_dir_is_read_once_relative_to_the_config_file() {
    let root = std::env::temp_dir().join(format!("anteroom-config-pages-{}", std::process::id()));
    let dir = root.join("pages");
    std::fs::create_dir_all(dir.join("lang")).unwrap();
    std::fs::write(dir.join("waiting.html"), "<p>{{head}}</p>").unwrap();
    std::fs::write(dir.join("style.css"), "body{}").unwrap();
    std::fs::write(dir.join("lang/de.toml"), "title = \"x\"").unwrap();
    std::fs::write(dir.join("logo.png"), [0u8, 1, 2]).unwrap();
    std::fs::write(dir.join("lang/notes.txt"), "not a language").unwrap();
    let path = root.join("anteroom.toml");
    std::fs::write(&path, format!("{UPSTREAM}[pages]\ndir = \"pages\"\n")).unwrap();

    let config = Config::load(&path).expect("valid");
    assert_eq!(config.pages.dir.as_deref(), Some(dir.as_path()));
    let files: Vec<(&str, &str)> = config
        .pages
        .files
        .iter()
        .map(|file| (file.name.as_str(), file.text.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("lang/de.toml", "title = \"x\""),
            ("style.css", "body{}"),
            ("waiting.html", "<p>{{head}}</p>"),
        ]
    );

    std::fs::write(dir.join("closed.html"), [0xff, 0xfe]).unwrap();
    let problem = match Config::load(&path) {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}"),
    };
    assert!(
        problem.starts_with("pages.dir: ") && problem.contains("closed.html: is not UTF-8 text"),
        "{problem}"
    );
    std::fs::write(
        dir.join("closed.html"),
        "x".repeat(anteroom_config::MAX_PAGE_FILE_BYTES as usize + 1),
    )
    .unwrap();
    let problem = match Config::load(&path) {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}"),
    };
    assert!(problem.contains("closed.html: 65537 bytes"), "{problem}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn pages_dir_must_be_readable() {
    let message = invalid(&format!(
        "{UPSTREAM}[pages]\ndir = \"/nonexistent/anteroom-pages\"\n"
    ));
    assert!(
        message.starts_with("pages.dir: /nonexistent/anteroom-pages: cannot read"),
        "{message}"
    );
    let message = invalid(&format!("{UPSTREAM}[pages]\ndir = \"\"\n"));
    assert!(
        message.starts_with("pages.dir: must not be empty"),
        "{message}"
    );
    let message = parse_error(&format!("{UPSTREAM}[pages]\ndirectory = \"x\"\n"));
    assert!(message.contains("directory"), "{message}");
}
