//! `[store]`'s three ways to Redis: `redis_url` (one server), `sentinels`
//! with `sentinel_master`, `cluster_nodes`. Exactly one; mixtures and half
//! configurations are refused, naming the key.

use anteroom_config::{Backend, Config, ConfigError};

const KEY: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn file(store: &str) -> String {
    format!(
        "upstream = \"http://127.0.0.1:3000\"\n[secrets]\ncookie_keys = [\"{KEY}\"]\n\
         [store]\nbackend = \"redis\"\n{store}\n"
    )
}

fn valid(store: &str) -> Config {
    let text = file(store);
    Config::from_toml(&text, |_| None).unwrap_or_else(|error| panic!("{error}\n--- in ---\n{text}"))
}

fn invalid(store: &str) -> String {
    let text = file(store);
    match Config::from_toml(&text, |_| None) {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}\n--- in ---\n{text}"),
    }
}

#[test]
fn sentinels_and_a_master_name_make_a_sentinel_backend() {
    let config = valid(
        "sentinels = [\"10.0.0.1:26379\", \"sentinel-2.internal:26379\", \"[::1]:26379\"]\n\
         sentinel_master = \"anteroom\"",
    );
    assert_eq!(
        config.store.backend,
        Backend::Sentinel {
            sentinels: vec![
                "10.0.0.1:26379".to_owned(),
                "sentinel-2.internal:26379".to_owned(),
                "[::1]:26379".to_owned()
            ],
            master: "anteroom".to_owned(),
            credentials: None,
            sentinel_credentials: None,
            tls: None,
        }
    );
}

#[test]
fn cluster_nodes_make_a_cluster_backend() {
    let config = valid("cluster_nodes = [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]");
    assert_eq!(
        config.store.backend,
        Backend::Cluster {
            nodes: vec!["10.0.0.1:7000".to_owned(), "10.0.0.2:7000".to_owned()],
            credentials: None,
            tls: None,
        }
    );
}

#[test]
fn redis_url_keeps_its_default_when_neither_other_is_given() {
    let config = valid("");
    assert!(matches!(
        config.store.backend,
        Backend::Redis { ref url, .. } if url == "redis://127.0.0.1:6379/0"
    ));
}

#[test]
fn mixtures_are_refused_naming_both_keys() {
    for (store, first, second) in [
        (
            "redis_url = \"redis://a:6379\"\nsentinels = [\"a:26379\"]\nsentinel_master = \"m\"",
            "store.redis_url",
            "store.sentinels",
        ),
        (
            "redis_url = \"redis://a:6379\"\ncluster_nodes = [\"a:7000\"]",
            "store.redis_url",
            "store.cluster_nodes",
        ),
        (
            "redis_url = \"redis://a:6379\"\nsentinel_master = \"m\"",
            "store.redis_url",
            "store.sentinel_master",
        ),
        (
            "sentinels = [\"a:26379\"]\nsentinel_master = \"m\"\ncluster_nodes = [\"a:7000\"]",
            "store.cluster_nodes",
            "store.sentinels",
        ),
    ] {
        let message = invalid(store);
        assert!(message.starts_with(first), "{store}: {message}");
        assert!(message.contains(second), "{store}: {message}");
    }
}

#[test]
fn half_a_sentinel_configuration_is_refused() {
    let message = invalid("sentinels = [\"a:26379\"]");
    assert!(
        message.starts_with("store.sentinel_master: required"),
        "{message}"
    );
    let message = invalid("sentinel_master = \"anteroom\"");
    assert!(
        message.starts_with("store.sentinels: required"),
        "{message}"
    );
    let message = invalid("sentinels = [\"a:26379\"]\nsentinel_master = \" \"");
    assert!(
        message.starts_with("store.sentinel_master: must not be empty"),
        "{message}"
    );
}

#[test]
fn each_node_is_host_and_port() {
    for (entry, problem) in [
        ("a", "no port"),
        ("a:0", "is not a port"),
        ("a:99999", "is not a port"),
        (":7000", "no host"),
        ("redis://a:7000", "not a URL"),
        ("::1:7000", "IPv6 goes in brackets"),
        ("[nope]:7000", "is not an IPv6 address"),
        ("a b:7000", "the host is a name or an address"),
    ] {
        let message = invalid(&format!("cluster_nodes = [\"{entry}\"]"));
        assert!(
            message.starts_with("store.cluster_nodes: "),
            "{entry}: {message}"
        );
        assert!(message.contains(problem), "{entry}: {message}");
        let message = invalid(&format!(
            "sentinels = [\"{entry}\"]\nsentinel_master = \"m\""
        ));
        assert!(
            message.starts_with("store.sentinels: "),
            "{entry}: {message}"
        );
    }
    let message = invalid("cluster_nodes = []");
    assert!(message.contains("at least one"), "{message}");
    let message = invalid("cluster_nodes = [\"a:7000\", \"a:7000\"]");
    assert!(message.contains("listed twice"), "{message}");
    let many: Vec<String> = (1..=33).map(|port| format!("\"a:{port}\"")).collect();
    let message = invalid(&format!("cluster_nodes = [{}]", many.join(", ")));
    assert!(message.contains("at most 32"), "{message}");
}

#[test]
fn tls_files_are_refused_with_sentinels_or_a_cluster_without_tls() {
    let message = invalid("cluster_nodes = [\"a:7000\"]\ntls_ca_file = \"ca.pem\"");
    assert!(
        message.starts_with("store.tls_ca_file: set, but store.tls is not true"),
        "{message}"
    );
    assert!(message.contains("store.cluster_nodes"), "{message}");
    let message =
        invalid("sentinels = [\"a:26379\"]\nsentinel_master = \"m\"\ntls_cert_file = \"c.pem\"");
    assert!(message.starts_with("store.tls_cert_file: "), "{message}");
    assert!(message.contains("store.sentinels"), "{message}");
}

#[test]
fn tls_is_a_switch_for_sentinel_or_a_cluster_only() {
    let config = valid("cluster_nodes = [\"a:7000\"]\ntls = true");
    assert!(
        matches!(
            config.store.backend,
            Backend::Cluster { tls: Some(ref tls), .. } if tls.ca.is_none() && tls.client.is_none()
        ),
        "{:?}",
        config.store.backend
    );
    let config = valid("cluster_nodes = [\"a:7000\"]\ntls = false");
    assert!(matches!(
        config.store.backend,
        Backend::Cluster { tls: None, .. }
    ));
    let config = valid("sentinels = [\"a:26379\"]\nsentinel_master = \"m\"\ntls = true");
    assert!(matches!(
        config.store.backend,
        Backend::Sentinel { tls: Some(_), .. }
    ));
    let message = invalid("redis_url = \"rediss://a:6380\"\ntls = true");
    assert!(
        message.starts_with("store.tls: only with store.sentinels or store.cluster_nodes"),
        "{message}"
    );
}

#[test]
fn the_memory_backend_ignores_them_as_it_ignores_redis_url() {
    let text = "upstream = \"http://127.0.0.1:3000\"\n[store]\nbackend = \"memory\"\n\
                cluster_nodes = [\"not a node\"]\n";
    let config = Config::from_toml(text, |_| None).expect("valid");
    assert_eq!(config.store.backend, Backend::Memory);
}

#[test]
fn replicas_acked_go_with_one_server_or_sentinels_not_yet_a_cluster() {
    assert_eq!(
        valid("sentinels = [\"10.0.0.1:26379\"]\nsentinel_master = \"m\"\nmin_replicas_acked = 1")
            .store
            .min_replicas_acked
            .map(|n| n.get()),
        Some(1)
    );
    let message = invalid("cluster_nodes = [\"10.0.0.1:7000\"]\nmin_replicas_acked = 1");
    assert!(
        message.contains("store.min_replicas_acked") && message.contains("cluster_nodes"),
        "{message}"
    );
}
