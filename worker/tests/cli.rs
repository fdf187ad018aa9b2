//! `--check`: 0 on a valid config, 2 on an invalid one, naming the key.

use std::path::Path;
use std::process::Command;

#[test]
fn check_validates_the_config() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let valid = Command::new(env!("CARGO_BIN_EXE_anteroom-worker"))
        .arg("--config")
        .arg(config.join("anteroom.example.toml"))
        .arg("--check")
        .output()
        .expect("run the binary");
    assert_eq!(valid.status.code(), Some(0), "{valid:?}");

    let bad = std::env::temp_dir().join(format!("anteroom-worker-cli-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "upstream = \"http://127.0.0.1:3000\"\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let invalid = Command::new(env!("CARGO_BIN_EXE_anteroom-worker"))
        .arg("--config")
        .arg(&bad)
        .arg("--check")
        .output()
        .expect("run the binary");
    let _ = std::fs::remove_file(&bad);
    assert_eq!(invalid.status.code(), Some(2), "{invalid:?}");
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("listen"));
}

/// `rediss://` with `[store]`'s TLS files: `--check` reads them, parses
/// every certificate and tries the client certificate with its key, and
/// names the key of whatever is wrong. Nothing is contacted.
#[test]
fn check_reads_and_tries_the_tls_files() {
    let dir = std::env::temp_dir().join(format!("anteroom-worker-cli-tls-{}", std::process::id()));
    let own = anteroom_tests::Certificates::issue(&dir, "own");
    let other = anteroom_tests::Certificates::issue(&dir, "other");
    let check = |tls: anteroom_tests::RedisTls| {
        let file = anteroom_tests::gateway_to("http://127.0.0.1:3000")
            .redis_tls("rediss://127.0.0.1:6380/0", tls)
            .config_file()
            .toml();
        let path = dir.join("anteroom.toml");
        std::fs::write(&path, file).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_anteroom-worker"))
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .expect("run the binary");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let presenting = |cert: &Path, key: &Path| anteroom_tests::RedisTls {
        tls_ca_file: Some(own.ca.clone()),
        tls_cert_file: Some(cert.to_owned()),
        tls_key_file: Some(key.to_owned()),
    };

    assert_eq!(
        check(presenting(&own.client_cert, &own.client_key)),
        (Some(0), String::new())
    );
    let (code, message) = check(presenting(&other.client_cert, &own.client_key));
    assert_eq!(code, Some(2), "{message}");
    assert!(
        message.contains("store.tls_key_file (") && message.contains("store.tls_cert_file ("),
        "{message}"
    );
    let (code, message) = check(anteroom_tests::RedisTls {
        tls_ca_file: Some(dir.join("missing.pem")),
        ..anteroom_tests::RedisTls::default()
    });
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("store.tls_ca_file: "), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}
