//! `[store]`'s TLS keys (`tls_ca_file`, `tls_cert_file`, `tls_key_file`):
//! read relative to the config file, every certificate parsed, and each
//! problem named by its key, so that `--check` finds it.

use std::path::PathBuf;

use anteroom_config::{Backend, Config, ConfigError, RedisTls};

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A directory of this test's own, with a CA certificate (`ca.pem`), a
/// client certificate (`client.pem`) and its key (`client-key.pem`).
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(test: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("anteroom-config-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let client_key = rcgen::KeyPair::generate().unwrap();
        let client_cert = rcgen::CertificateParams::new(Vec::new())
            .unwrap()
            .signed_by(&client_key, &issuer)
            .unwrap();
        let files = Files { dir };
        files.write("ca.pem", &ca_cert.pem());
        files.write("client.pem", &client_cert.pem());
        files.write("client-key.pem", &client_key.serialize_pem());
        files
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Loads `anteroom.toml` in the directory: a Redis backend at `url`
    /// with `store_keys` under `[store]`.
    fn load(&self, url: &str, store_keys: &str) -> Result<Config, ConfigError> {
        let path = self.dir.join("anteroom.toml");
        std::fs::write(
            &path,
            format!(
                "upstream = \"http://127.0.0.1:3000\"\n[store]\nbackend = \"redis\"\n\
                 redis_url = \"{url}\"\n{store_keys}\n[secrets]\ncookie_keys = [\"{KEY_A}\"]\n"
            ),
        )
        .unwrap();
        Config::load(&path)
    }

    /// The message of a file with a TLS Redis and `store_keys` refused.
    fn refused(&self, store_keys: &str) -> String {
        match self.load("rediss://cache:6380/0", store_keys) {
            Err(ConfigError::Invalid(message)) => message,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls(config: &Config) -> &RedisTls {
    match &config.store.backend {
        Backend::Redis { tls, .. } => tls,
        other => panic!("a redis backend with a URL: {other:?}"),
    }
}

#[test]
fn the_files_are_read_relative_to_the_config_file() {
    let files = Files::new("read");
    let config = files
        .load(
            "rediss://cache:6380/0",
            "tls_ca_file = \"ca.pem\"\ntls_cert_file = \"client.pem\"\n\
             tls_key_file = \"client-key.pem\"",
        )
        .expect("valid");
    let tls = tls(&config);
    let ca = tls.ca.as_ref().expect("a CA");
    assert_eq!(ca.path, files.path("ca.pem"));
    assert_eq!(ca.pem, std::fs::read(files.path("ca.pem")).unwrap());
    let client = tls.client.as_ref().expect("a client identity");
    assert_eq!(client.cert.path, files.path("client.pem"));
    assert_eq!(client.key.path, files.path("client-key.pem"));
    assert_eq!(
        client.key.pem,
        std::fs::read(files.path("client-key.pem")).unwrap()
    );
    // The key's text never reaches a log line through `?config`.
    let debug = format!("{config:?}");
    assert!(debug.contains("client-key.pem"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}

#[test]
fn without_the_keys_rediss_trusts_the_system_roots() {
    let files = Files::new("none");
    let config = files.load("rediss://cache:6380/0", "").expect("valid");
    assert_eq!(*tls(&config), RedisTls::default());
}

#[test]
fn a_missing_or_empty_file_is_named_by_its_key() {
    let files = Files::new("missing");
    let message = files.refused("tls_ca_file = \"nowhere.pem\"");
    let shown = files.path("nowhere.pem").display().to_string();
    assert!(
        message.starts_with(&format!("store.tls_ca_file: {shown}: cannot read")),
        "{message}"
    );
    let message = files.refused("tls_ca_file = \"\"");
    assert!(
        message.starts_with("store.tls_ca_file: must not be empty"),
        "{message}"
    );
}

#[test]
fn a_file_without_a_certificate_or_with_a_broken_one_is_refused() {
    let files = Files::new("broken");
    // A key where the CA was meant.
    let message = files.refused("tls_ca_file = \"client-key.pem\"");
    assert!(
        message.starts_with("store.tls_ca_file: ") && message.contains("has no certificate"),
        "{message}"
    );
    // PEM armour around something that is not a certificate.
    files.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let message = files.refused("tls_ca_file = \"garbage.pem\"");
    assert!(
        message.starts_with("store.tls_ca_file: ")
            && message.contains("certificate 1 is not a valid certificate"),
        "{message}"
    );
    let message =
        files.refused("tls_cert_file = \"garbage.pem\"\ntls_key_file = \"client-key.pem\"");
    assert!(message.starts_with("store.tls_cert_file: "), "{message}");
    // A certificate where the key was meant.
    let message = files.refused("tls_cert_file = \"client.pem\"\ntls_key_file = \"ca.pem\"");
    assert!(
        message.starts_with("store.tls_key_file: ") && message.contains("has no private key"),
        "{message}"
    );
}

#[test]
fn a_client_certificate_needs_its_key_and_the_key_its_certificate() {
    let files = Files::new("pair");
    let message = files.refused("tls_cert_file = \"client.pem\"");
    assert!(
        message.starts_with("store.tls_cert_file: set without store.tls_key_file"),
        "{message}"
    );
    let message = files.refused("tls_key_file = \"client-key.pem\"");
    assert!(
        message.starts_with("store.tls_key_file: set without store.tls_cert_file"),
        "{message}"
    );
}

/// TLS keys with a plain-text URL would leave the operator believing the
/// connection is encrypted.
#[test]
fn the_keys_need_a_rediss_url() {
    let files = Files::new("plain");
    for url in ["redis://cache:6379/0", "unix:///run/redis.sock"] {
        let message = match files.load(url, "tls_ca_file = \"ca.pem\"") {
            Err(ConfigError::Invalid(message)) => message,
            other => panic!("expected an Invalid error, got {other:?}"),
        };
        assert!(
            message.starts_with("store.tls_ca_file: set, but store.redis_url is ")
                && message.contains("use rediss://"),
            "{message}"
        );
    }
}

/// `#insecure` (TLS without checking the certificate) is not on offer.
#[test]
fn an_insecure_fragment_is_refused_with_the_way_to_trust_a_private_ca() {
    let files = Files::new("insecure");
    let message = match files.load("rediss://cache:6380/0#insecure", "") {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected an Invalid error, got {other:?}"),
    };
    assert!(
        message.starts_with("store.redis_url: must not have a fragment")
            && message.contains("store.tls_ca_file"),
        "{message}"
    );
}

#[test]
fn the_keys_are_ignored_with_the_memory_backend() {
    let text = "upstream = \"http://127.0.0.1:3000\"\n[store]\n\
                tls_ca_file = \"/nonexistent/ca.pem\"\n";
    let config = Config::from_toml(text, |_| None).expect("valid");
    assert_eq!(config.store.backend, Backend::Memory);
}
