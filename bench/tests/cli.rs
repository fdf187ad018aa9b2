//! `--check`: 0 on a valid config, 2 on an invalid one, naming the key;
//! `origin`'s flags checked before it listens.

use std::process::Command;

#[test]
fn check_validates_the_config() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let valid = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .arg("--config")
        .arg(config.join("anteroom.example.toml"))
        .arg("--check")
        .output()
        .expect("run the binary");
    assert_eq!(valid.status.code(), Some(0), "{valid:?}");

    let bad = std::env::temp_dir().join(format!("anteroom-bench-cli-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "upstream = \"http://127.0.0.1:3000\"\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let invalid = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .arg("--config")
        .arg(&bad)
        .arg("--check")
        .output()
        .expect("run the binary");
    let _ = std::fs::remove_file(&bad);
    assert_eq!(invalid.status.code(), Some(2), "{invalid:?}");
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("listen"));
}

/// Each refused before the site listens: exit 2 and the reason.
#[test]
fn origin_refuses_a_degradation_that_makes_no_sense() {
    for (flags, reason) in [
        (
            &["--capacity", "10", "--degrade-to", "5"][..],
            "--degrade-to needs --degrade-at",
        ),
        (
            &["--capacity", "10", "--degrade-at", "5"][..],
            "--degrade-at needs --degrade-to",
        ),
        (
            &["--capacity", "10", "--recover-at", "5"][..],
            "--recover-at needs --degrade-at",
        ),
        (
            &["--degrade-at", "5", "--degrade-to", "5"][..],
            "--degrade-at needs the site's capacity",
        ),
        (
            &["--capacity", "10", "--degrade-at", "5", "--degrade-to", "0"][..],
            "--degrade-to must be at least 1",
        ),
        (
            &[
                "--capacity",
                "10",
                "--degrade-at",
                "5",
                "--degrade-to",
                "12",
            ][..],
            "--degrade-to 12 must be below the site's capacity (10)",
        ),
        (
            &["--capacity", "10", "--degrade-at=-1", "--degrade-to", "5"][..],
            "--degrade-at must be a number of seconds from 0",
        ),
        (
            &[
                "--capacity",
                "10",
                "--degrade-at",
                "5",
                "--degrade-to",
                "5",
                "--recover-at",
                "5",
            ][..],
            "--recover-at 5 must be later than --degrade-at 5",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
            .args(["origin", "--listen", "127.0.0.1:0"])
            .args(flags)
            .output()
            .expect("run the binary");
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{flags:?}: {stderr}");
    }
}
