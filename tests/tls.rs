//! TLS to Redis: certificates of a private CA, made here for each test
//! binary (`rcgen`), and a private `redis-server` that speaks only TLS
//! (`--port 0 --tls-port PORT`), one per test binary, shared by its tests.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::sync::OnceCell;

use crate::free_port;

/// A private CA and what it signed, as PEM files: a server certificate for
/// `127.0.0.1` and `localhost`, and a client certificate (mutual TLS).
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA's certificate: what a client given `tls_ca_file` trusts.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certificates {
    /// A new CA called `name` and its two certificates, written into `dir`
    /// as `NAME-ca.pem`, `NAME-server.pem`, `NAME-server-key.pem`,
    /// `NAME-client.pem` and `NAME-client-key.pem`.
    pub fn issue(dir: &Path, name: &str) -> Certificates {
        std::fs::create_dir_all(dir).expect("a directory for the certificates");
        let write = |file: &str, pem: &str| {
            let path = dir.join(format!("{name}-{file}.pem"));
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("a CA without names");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("the CA signs itself");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |common_name: &str, names: Vec<String>| {
            let key = KeyPair::generate().expect("a key");
            let mut params = CertificateParams::new(names).expect("valid names");
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &issuer).expect("the CA signs");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            "redis",
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        );
        let (client_cert, client_key) = leaf("anteroom", Vec::new());
        Certificates {
            ca: write("ca", &ca_cert.pem()),
            server_cert: write("server", &server_cert),
            server_key: write("server-key", &server_key),
            client_cert: write("client", &client_cert),
            client_key: write("client-key", &client_key),
        }
    }
}

/// A private `redis-server` that speaks only TLS, with a certificate of its
/// own CA ([`TlsRedisServer::certificates`]). Clients may present a
/// certificate (`--tls-auth-clients optional`): one signed by another CA is
/// refused, none is accepted.
///
/// It runs under a small shell that stops it, and removes its directory,
/// when this process lets go of the shell's standard input: when the value
/// is dropped, or when the test binary exits (the shared server of
/// [`TlsRedisServer::shared`] is never dropped).
pub struct TlsRedisServer {
    pub port: u16,
    pub certificates: Certificates,
    dir: PathBuf,
    shell: Child,
    /// Closed (dropped): the shell stops the server.
    lifeline: Option<ChildStdin>,
}

static SHARED: OnceCell<TlsRedisServer> = OnceCell::const_new();

impl TlsRedisServer {
    /// The test binary's one TLS server, started by the first test that
    /// asks: its tests share it (each with keys of its own), so the suite
    /// pays for one start.
    pub async fn shared() -> &'static TlsRedisServer {
        SHARED.get_or_init(TlsRedisServer::start).await
    }

    /// A server of its own.
    pub async fn start() -> TlsRedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "anteroom-test-redis-tls-{port}-{}",
            std::process::id()
        ));
        let certificates = Certificates::issue(&dir, "redis");
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(
                r#"redis-server "$@" & server=$!
                read -r _
                kill "$server"; wait "$server"; rm -rf -- "$ANTEROOM_TEST_REDIS_DIR""#,
            )
            .arg("sh")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--tls-auth-clients", "optional"])
            .arg("--tls-cert-file")
            .arg(&certificates.server_cert)
            .arg("--tls-key-file")
            .arg(&certificates.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&certificates.ca)
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .env("ANTEROOM_TEST_REDIS_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let lifeline = shell.stdin.take();
        let server = TlsRedisServer {
            port,
            certificates,
            dir,
            shell,
            lifeline,
        };
        // A server that listens has loaded its certificates (it reads them
        // before it binds) and has no data to load.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "redis-server with TLS on port {port} did not start (redis-server 6 or later, \
             built with TLS, is needed); its log: {}",
            server.log()
        );
    }

    /// `rediss://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    /// Certificates of another CA, called `name`, which this server does
    /// not trust (and whose server certificate it does not use), written
    /// beside its own and removed with them.
    pub fn foreign_certificates(&self, name: &str) -> Certificates {
        Certificates::issue(&self.dir, name)
    }

    /// What the server has logged so far (`--logfile`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for TlsRedisServer {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.shell.wait();
    }
}
