//! `--check`: 0 on a valid config, 2 on an invalid one, naming the key.

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
