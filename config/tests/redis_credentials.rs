//! `[store]` credentials: `username` and `password` for the Redis servers
//! whichever way they are reached (with `redis_url` they go into the URL,
//! which may carry them instead, never both), `sentinel_username` and
//! `sentinel_password` for the sentinels themselves; the environment's
//! `ANTEROOM_REDIS_PASSWORD` and `ANTEROOM_SENTINEL_PASSWORD` win over the
//! file. Nonsense is refused naming the key, and no password is ever shown.

use anteroom_config::{Backend, Config, ConfigError, RedisCredentials};

const KEY: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SENTINELS: &str = "sentinels = [\"10.0.0.1:26379\"]\nsentinel_master = \"anteroom\"";
const CLUSTER: &str = "cluster_nodes = [\"10.0.0.1:7000\"]";

fn file(store: &str) -> String {
    format!(
        "upstream = \"http://127.0.0.1:3000\"\n[secrets]\ncookie_keys = [\"{KEY}\"]\n\
         [store]\nbackend = \"redis\"\n{store}\n"
    )
}

fn load(store: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Config::from_toml(&file(store), move |name| {
        env.iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.clone())
    })
}

fn valid(store: &str, env: &[(&str, &str)]) -> Config {
    load(store, env).unwrap_or_else(|error| panic!("{error}\n--- in ---\n{store}"))
}

fn invalid(store: &str, env: &[(&str, &str)]) -> String {
    match load(store, env) {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}\n--- in ---\n{store}"),
    }
}

fn credentials(username: Option<&str>, password: &str) -> Option<RedisCredentials> {
    Some(RedisCredentials {
        username: username.map(str::to_owned),
        password: password.to_owned(),
    })
}

#[test]
fn sentinel_takes_the_servers_and_the_sentinels_credentials_apart() {
    let config = valid(
        &format!(
            "{SENTINELS}\nusername = \"anteroom\"\npassword = \"server-secret\"\n\
             sentinel_password = \"sentinel-secret\""
        ),
        &[],
    );
    let Backend::Sentinel {
        credentials: servers,
        sentinel_credentials,
        ..
    } = &config.store.backend
    else {
        panic!("a Sentinel backend: {:?}", config.store.backend);
    };
    assert_eq!(*servers, credentials(Some("anteroom"), "server-secret"));
    assert_eq!(*sentinel_credentials, credentials(None, "sentinel-secret"));
}

#[test]
fn a_cluster_takes_the_servers_credentials() {
    let config = valid(&format!("{CLUSTER}\npassword = \"node-secret\""), &[]);
    assert_eq!(
        config.store.backend,
        Backend::Cluster {
            nodes: vec!["10.0.0.1:7000".to_owned()],
            credentials: credentials(None, "node-secret"),
            tls: None,
        }
    );
}

#[test]
fn the_environment_wins_over_the_file() {
    let config = valid(
        &format!("{SENTINELS}\npassword = \"from-file\"\nsentinel_password = \"from-file\""),
        &[
            ("ANTEROOM_REDIS_PASSWORD", "from-env"),
            ("ANTEROOM_SENTINEL_PASSWORD", "sentinel-from-env"),
        ],
    );
    let Backend::Sentinel {
        credentials: servers,
        sentinel_credentials,
        ..
    } = &config.store.backend
    else {
        panic!("a Sentinel backend");
    };
    assert_eq!(*servers, credentials(None, "from-env"));
    assert_eq!(
        *sentinel_credentials,
        credentials(None, "sentinel-from-env")
    );
    // An empty variable is no password (as an empty ANTEROOM_COOKIE_KEYS is
    // no keys): the file's counts.
    let config = valid(
        &format!("{CLUSTER}\npassword = \"from-file\""),
        &[("ANTEROOM_REDIS_PASSWORD", "")],
    );
    assert!(matches!(
        config.store.backend,
        Backend::Cluster { credentials: Some(ref given), .. } if given.password == "from-file"
    ));
}

#[test]
fn with_redis_url_the_password_goes_into_the_url() {
    let config = valid(
        "redis_url = \"redis://cache:6379/0\"\nusername = \"app\"\npassword = \"p@ss/word\"",
        &[],
    );
    let Backend::Redis { url, .. } = &config.store.backend else {
        panic!("one server");
    };
    assert_eq!(url, "redis://app:p%40ss%2Fword@cache:6379/0");
    // A URL with a user name of its own takes the password from the
    // environment, so the secret need not be in the file.
    let config = valid(
        "redis_url = \"redis://app@cache:6379/0\"",
        &[("ANTEROOM_REDIS_PASSWORD", "secret")],
    );
    assert!(matches!(
        &config.store.backend,
        Backend::Redis { url, .. } if url == "redis://app:secret@cache:6379/0"
    ));
}

#[test]
fn a_password_in_two_places_is_refused_naming_the_key() {
    let message = invalid(
        "redis_url = \"redis://:in-url@cache:6379/0\"\npassword = \"in-file\"",
        &[],
    );
    assert!(
        message.starts_with("store.password: set, but store.redis_url has a password"),
        "{message}"
    );
    let message = invalid(
        "redis_url = \"redis://:in-url@cache:6379/0\"",
        &[("ANTEROOM_REDIS_PASSWORD", "in-env")],
    );
    assert!(
        message.starts_with("ANTEROOM_REDIS_PASSWORD: set, but store.redis_url has a password"),
        "{message}"
    );
    let message = invalid(
        "redis_url = \"redis://app@cache:6379/0\"\nusername = \"other\"\npassword = \"p\"",
        &[],
    );
    assert!(
        message.starts_with("store.username: set, but store.redis_url has a user name"),
        "{message}"
    );
    for secret in ["in-url", "in-file", "in-env"] {
        assert!(!message.contains(secret), "{message}");
    }
}

#[test]
fn half_or_empty_credentials_are_refused_naming_the_key() {
    for (store, env, start) in [
        (
            format!("{CLUSTER}\nusername = \"app\""),
            &[][..],
            "store.username: set without store.password (or ANTEROOM_REDIS_PASSWORD)",
        ),
        (
            format!("{SENTINELS}\nsentinel_username = \"watcher\""),
            &[],
            "store.sentinel_username: set without store.sentinel_password (or \
             ANTEROOM_SENTINEL_PASSWORD)",
        ),
        (
            format!("{CLUSTER}\npassword = \"\""),
            &[],
            "store.password: must not be empty",
        ),
        (
            format!("{SENTINELS}\nusername = \"\"\npassword = \"p\""),
            &[],
            "store.username: must be a user name",
        ),
        (
            "redis_url = \"unix:///run/redis.sock\"\npassword = \"p\"".to_owned(),
            &[],
            "store.password: not supported with a unix:// store.redis_url",
        ),
    ] {
        let message = invalid(&store, env);
        assert!(message.starts_with(start), "{store}: {message}");
    }
}

#[test]
fn sentinel_credentials_without_sentinels_are_refused() {
    let message = invalid(&format!("{CLUSTER}\nsentinel_password = \"s\""), &[]);
    assert!(
        message.starts_with("store.sentinel_password: set, but store.sentinels is not"),
        "{message}"
    );
    let message = invalid(
        "redis_url = \"redis://cache:6379/0\"",
        &[("ANTEROOM_SENTINEL_PASSWORD", "s")],
    );
    assert!(
        message.starts_with("ANTEROOM_SENTINEL_PASSWORD: set, but store.sentinels is not"),
        "{message}"
    );
}

#[test]
fn the_memory_backend_ignores_them_as_it_ignores_redis_url() {
    let text = "upstream = \"http://127.0.0.1:3000\"\n[store]\nbackend = \"memory\"\n\
                password = \"p\"\nsentinel_password = \"s\"\n";
    let config = Config::from_toml(text, |name| {
        name.ends_with("_PASSWORD").then(|| "from-env".to_owned())
    })
    .expect("valid");
    assert_eq!(config.store.backend, Backend::Memory);
}

#[test]
fn debug_output_never_shows_a_password() {
    for (store, secret) in [
        (
            format!("{SENTINELS}\npassword = \"hunter2\"\nsentinel_password = \"swordfish\""),
            "hunter2",
        ),
        (format!("{CLUSTER}\npassword = \"hunter2\""), "hunter2"),
        (
            "redis_url = \"redis://cache:6379/0\"\npassword = \"hunter2\"".to_owned(),
            "hunter2",
        ),
    ] {
        let shown = format!("{:?}", valid(&store, &[]));
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("swordfish"), "{shown}");
    }
}
