//! The two files shipped under `config/` stay valid and mean what they say.

use std::path::Path;
use std::time::Duration;

use anteroom_config::{Backend, Config, ConfigError, DEMO_TOML, OnError, RedisTls, Sink};

fn no_env(_: &str) -> Option<String> {
    None
}

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("anteroom.example.toml");
    std::fs::read_to_string(path).expect("the example file ships with the crate")
}

#[test]
fn annotated_example_validates() {
    let config = Config::from_toml(&example_text(), no_env).expect("example is valid");
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9090");
    assert_eq!(config.upstream.authority, "127.0.0.1:3000");
    assert_eq!(
        config.store.backend,
        Backend::Redis {
            url: "redis://127.0.0.1:6379/0".into(),
            tls: RedisTls::default(),
        }
    );
    assert_eq!(config.store.on_error, OnError::Wait);
    assert_eq!(config.secrets.cookie_keys.len(), 1);
    assert_eq!(config.secrets.cookie_keys[0].len(), 40);
    assert_eq!(config.secrets.admin_token, None);
    assert_eq!(config.worker.admin_listen.to_string(), "127.0.0.1:9091");

    let room = config.room("vaccini").expect("room vaccini");
    assert_eq!(room.paths, ["/prenota", "/api/"]);
    assert_eq!(room.exclude, ["/api/static/"]);
    assert_eq!(room.capacity.get(), 200);
    assert_eq!(room.admit_per_minute.get(), 600);

    assert_eq!(config.buffers.len(), 1);
    let buffer = &config.buffers[0];
    assert_eq!(buffer.name, "bookings");
    assert_eq!(buffer.room, "vaccini");
    assert_eq!(buffer.method, http::Method::POST);
    assert_eq!(buffer.path, "/api/bookings");
    assert_eq!(buffer.drain_per_second.get(), 50);
    assert_eq!(buffer.sink, Sink::Http);
}

/// The example promises to show every key at its default; check the values
/// it writes out equal what an empty section would give.
#[test]
fn annotated_example_shows_the_defaults() {
    let example = Config::from_toml(&example_text(), no_env).expect("example is valid");
    let defaults = Config::from_toml(
        r#"
        upstream = "http://127.0.0.1:3000"
        [store]
        backend = "redis"
        [secrets]
        cookie_keys = ["replace-me-with-40-random-characters-xyz"]
        [[room]]
        name = "vaccini"
        paths = ["/prenota", "/api/"]
        exclude = ["/api/static/"]
        capacity = 200
        admit_per_minute = 600
        [[buffer]]
        name = "bookings"
        room = "vaccini"
        path = "/api/bookings"
        drain_per_second = 50
        "#,
        no_env,
    )
    .expect("valid");
    assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
}

#[test]
fn example_lists_every_key() {
    let text = example_text();
    for key in [
        "listen",
        "admin_listen",
        "upstream",
        "upstream_timeout_seconds",
        "shutdown_grace_seconds",
        "time_zone",
        "backend",
        "redis_url",
        "on_error",
        "cookie_keys",
        "admin_token",
        "per_ip_per_second",
        "per_ip_burst",
        "tickets_per_ip_per_minute",
        "trusted_proxies",
        "name",
        "paths",
        "exclude",
        "capacity",
        "admit_per_minute",
        "session_seconds",
        "arrival_seconds",
        "refresh_seconds",
        "pre_queue_from",
        "opens_at",
        "closes_at",
        "enabled",
        "min_admit_per_minute",
        "latency_p90_ms",
        "max_error_rate",
        "room",
        "method",
        "path",
        "drain_per_second",
        "max_in_flight",
        "sink",
        "postgres_url",
        "statement",
    ] {
        assert!(
            text.contains(&format!("{key} =")) || text.contains(&format!("{key}=")),
            "anteroom.example.toml does not show {key}"
        );
    }
    for variable in ["ANTEROOM_COOKIE_KEYS", "ANTEROOM_ADMIN_TOKEN"] {
        assert!(
            text.contains(variable),
            "example does not mention {variable}"
        );
    }
}

#[test]
fn demo_validates() {
    let config = Config::from_toml(DEMO_TOML, no_env).expect("demo is valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9090");
    assert_eq!(config.upstream.uri.to_string(), "http://127.0.0.1:3000/");
    assert_eq!(config.store.backend, Backend::Memory);
    assert!(config.secrets.cookie_keys.is_empty());
    assert_eq!(config.rooms.len(), 1);
    let room = config.room("demo").expect("room demo");
    assert_eq!(room.paths, ["/prenota", "/api/"]);
    assert_eq!(room.capacity.get(), 1);
    assert_eq!(room.admit_per_minute.get(), 60);
    assert_eq!(room.session, Duration::from_secs(60));
    assert_eq!(room.arrival, Duration::from_secs(30));
    assert_eq!(room.refresh, Duration::from_secs(2));
    assert_eq!(config.buffers.len(), 1);
    assert_eq!(config.buffers[0].path, "/api/bookings");
    assert_eq!(config.buffers[0].drain_per_second.get(), 5);
}

#[test]
fn load_reads_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.toml");
    let config = Config::load(&path).expect("demo.toml loads");
    assert!(config.room("demo").is_some());
    assert_eq!(
        std::fs::read_to_string(&path).expect("readable"),
        DEMO_TOML,
        "DEMO_TOML is demo.toml"
    );
}

#[test]
fn load_names_a_missing_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-file.toml");
    let error = Config::load(&path).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("cannot read config file "), "{message}");
    assert!(message.contains("no-such-file.toml"), "{message}");
}
