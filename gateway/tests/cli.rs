//! The binary's command line: `--check` exits 0 on a valid config and 2 on an
//! invalid one, naming the key, without binding anything.

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_anteroom-gateway"))
}

fn config_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

#[test]
fn check_accepts_the_shipped_configs() {
    for name in ["demo.toml", "anteroom.example.toml"] {
        let output = gateway()
            .arg("--config")
            .arg(config_dir().join(name))
            .arg("--check")
            .output()
            .expect("run the gateway");
        assert_eq!(output.status.code(), Some(0), "{name}: {output:?}");
    }
}

#[test]
fn check_rejects_a_bad_config_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("anteroom-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [("capacity = 0", "capacity"), ("capacty = 5", "capacty")];
    for (line, key) in cases {
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            format!(
                "upstream = \"http://127.0.0.1:3000\"\n[[room]]\nname = \"a\"\npaths = [\"/a\"]\nadmit_per_minute = 60\n{}\n",
                if line.starts_with("capacity") { line.to_owned() } else { format!("capacity = 1\n{line}") }
            ),
        )
        .unwrap();
        let output = gateway()
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{line}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(key),
            "{line}: message should name {key}: {stderr}"
        );
    }
    let output = gateway()
        .arg("--config")
        .arg(dir.join("missing.toml"))
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bad config never starts a server, even without `--check`.
#[test]
fn a_bad_config_never_starts() {
    let dir = std::env::temp_dir().join(format!("anteroom-cli-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "upstream = \"ftp://x\"\n").unwrap();
    let output = gateway().arg("--config").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("upstream"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `log_format = "json"`: every line the gateway writes is a JSON object
/// with structured fields.
#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("anteroom-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("json.toml");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
    };
    std::fs::write(
        &path,
        format!(
            "listen = \"{}\"\nadmin_listen = \"{}\"\n\
             upstream = \"http://127.0.0.1:9\"\nlog_format = \"json\"\n",
            free(),
            free()
        ),
    )
    .unwrap();
    let mut child = gateway()
        .arg("--config")
        .arg(&path)
        .env_remove("ANTEROOM_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .expect("a log line")
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let line: serde_json::Value = serde_json::from_str(&first).expect("a JSON object");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(
        line["fields"]["message"], "anteroom gateway started",
        "{line}"
    );
    assert!(line["fields"]["listen"].is_string(), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[pages] dir` is part of the config: `--check` reads the operator's
/// files and compiles them, and refuses (exit 2, naming `pages.dir`, the
/// file and the problem) a directory that cannot be read, a file that is
/// not text, a template without a part it needs, or a broken language file.
/// A relative `dir` starts from the config file's directory.
#[test]
fn check_reads_and_compiles_the_operators_pages() {
    let dir = std::env::temp_dir().join(format!("anteroom-cli-pages-{}", std::process::id()));
    let pages = dir.join("pages");
    std::fs::create_dir_all(pages.join("lang")).unwrap();
    let config = dir.join("anteroom.toml");
    std::fs::write(
        &config,
        "upstream = \"http://127.0.0.1:3000\"\n[pages]\ndir = \"pages\"\n",
    )
    .unwrap();
    let check = || {
        let output = gateway()
            .arg("--config")
            .arg(&config)
            .arg("--check")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // Valid: a template of their own and one sentence reworded.
    std::fs::write(
        pages.join("closed.html"),
        "<!DOCTYPE html><html lang=\"{{lang}}\"><head>{{head}}</head><body><h1>{{closed_title}}</h1></body></html>",
    )
    .unwrap();
    std::fs::write(pages.join("lang/it.toml"), "closed_lead = \"Chiuso.\"\n").unwrap();
    assert_eq!(check(), (Some(0), String::new()));

    let cases: [(&str, &[u8], &str); 4] = [
        (
            "waiting.html",
            b"<html><head>{{head}}</head><body>{{script}}</body></html>",
            "waiting.html (en): {{status}} must appear exactly once",
        ),
        (
            "lang/it.toml",
            b"titel = \"Sei in coda\"\n",
            "lang/it.toml: titel",
        ),
        (
            "lang/de.toml",
            b"title = \"Warteschlange\"\n",
            "lang/de.toml: language_name: missing",
        ),
        ("style.css", b"\xff\xfe", "style.css: is not UTF-8 text"),
    ];
    for (name, text, expected) in cases {
        let path = pages.join(name);
        let before = std::fs::read(&path).ok();
        std::fs::write(&path, text).unwrap();
        let (code, stderr) = check();
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("pages.dir: ") && stderr.contains(expected),
            "{name}: {stderr}"
        );
        match before {
            Some(before) => std::fs::write(&path, before).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
    }
    std::fs::remove_dir_all(&pages).unwrap();
    let (code, stderr) = check();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("pages.dir: ") && stderr.contains("cannot read"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rediss://` with `[store]`'s TLS files is accepted by `--check`, which
/// reads them, parses every certificate and tries the client certificate
/// with its key; a key that is not the certificate's is refused (exit 2),
/// naming both keys. Nothing is contacted.
#[test]
fn check_accepts_rediss_and_tries_its_tls_files() {
    let dir = std::env::temp_dir().join(format!("anteroom-cli-tls-{}", std::process::id()));
    let own = anteroom_tests::Certificates::issue(&dir, "own");
    let other = anteroom_tests::Certificates::issue(&dir, "other");
    let check = |cert: &std::path::Path| {
        let tls = anteroom_tests::RedisTls {
            tls_ca_file: Some(own.ca.clone()),
            tls_cert_file: Some(cert.to_owned()),
            tls_key_file: Some(own.client_key.clone()),
        };
        let file = anteroom_tests::gateway_to("http://127.0.0.1:3000")
            .redis_tls("rediss://127.0.0.1:6380/0", tls)
            .config_file()
            .toml();
        let path = dir.join("anteroom.toml");
        std::fs::write(&path, file).unwrap();
        let output = gateway()
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(check(&own.client_cert), (Some(0), String::new()));
    let (code, message) = check(&other.client_cert);
    assert_eq!(code, Some(2), "{message}");
    assert!(
        message.contains("store.tls_key_file (") && message.contains("store.tls_cert_file ("),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
