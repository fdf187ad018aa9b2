//! Redis deployments of several processes, on free loopback ports: a
//! Sentinel group (a primary, a replica and three sentinels) and a Redis
//! Cluster of three primaries, either without passwords or with them
//! ([`Passwords`]: `requirepass` and `masterauth` on the servers,
//! `sentinel auth-pass` and optionally `requirepass` on the sentinels).
//!
//! Each process runs under a small shell that kills it (`SIGKILL`) and
//! exits when this process lets go of the shell's standard input: when the
//! value is dropped, or when the test binary exits, so that a fixture shared
//! through a `static` (never dropped) leaves nothing behind either. The
//! shell prints the server's PID first, so a test can `kill -9` the server
//! itself.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::free_port;
use crate::tls::Certificates;

/// The name the sentinels monitor the primary by.
pub const SENTINEL_MASTER: &str = "anteroom";

/// The nodes' password of [`RedisCluster::shared_with_password`].
pub const CLUSTER_PASSWORD: &str = "cluster-secret";

/// The passwords a deployment is started with.
#[derive(Clone, Debug, Default)]
pub struct Passwords {
    /// The servers' `requirepass` (and `masterauth`, for replication);
    /// given to the sentinels by `sentinel auth-pass`.
    pub servers: Option<String>,
    /// The sentinels' own `requirepass`.
    pub sentinels: Option<String>,
}

/// One `redis-server` (or sentinel) under a lifeline shell.
pub struct RedisProcess {
    pub port: u16,
    pub pid: u32,
    shell: Child,
    lifeline: Option<ChildStdin>,
}

impl RedisProcess {
    /// Starts `redis-server ARGS` (whose own output goes to a log file in
    /// `dir`) and waits until it answers `PING`.
    pub async fn start(port: u16, dir: &Path, args: &[String]) -> RedisProcess {
        RedisProcess::start_as(port, dir, args, None).await
    }

    /// As [`RedisProcess::start`], for a server that asks for `password`.
    pub async fn start_as(
        port: u16,
        dir: &Path,
        args: &[String],
        password: Option<&str>,
    ) -> RedisProcess {
        RedisProcess::start_tls(port, dir, args, password, None).await
    }

    /// As [`RedisProcess::start_as`], for a server that speaks only TLS
    /// (checked with `tls`'s CA and client certificate).
    pub async fn start_tls(
        port: u16,
        dir: &Path,
        args: &[String],
        password: Option<&str>,
        tls: Option<&Certificates>,
    ) -> RedisProcess {
        use std::io::BufRead;
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(
                r#"redis-server "$@" >/dev/null 2>&1 & server=$!
                echo "$server"
                read -r _
                kill -9 "$server" 2>/dev/null; wait "$server""#,
            )
            .arg("sh")
            .args(args)
            .arg("--logfile")
            .arg(dir.join(format!("redis-{port}.log")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let lifeline = shell.stdin.take();
        let mut first = String::new();
        std::io::BufReader::new(shell.stdout.take().expect("the shell's stdout"))
            .read_line(&mut first)
            .expect("the shell prints the server's PID");
        let pid = first.trim().parse().expect("a PID");
        let process = RedisProcess {
            port,
            pid,
            shell,
            lifeline,
        };
        for _ in 0..400 {
            if cli_tls(port, password, tls, &["PING"]).await == "PONG" {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not start");
    }

    /// `kill -9` the server, by its PID; the shell then exits too.
    pub fn kill(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -9 {} failed", self.pid);
        self.lifeline = None;
        let _ = self.shell.wait();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        // Closing the lifeline makes the shell kill the server.
        self.lifeline = None;
        let _ = self.shell.wait();
    }
}

/// `redis-cli -p PORT ARGS`: its output, trimmed ("" if it could not run).
pub async fn cli(port: u16, args: &[&str]) -> String {
    cli_as(port, None, args).await
}

/// As [`cli`], authenticated with `password` (given through the
/// environment, so that it is not on a command line).
pub async fn cli_as(port: u16, password: Option<&str>, args: &[&str]) -> String {
    cli_tls(port, password, None, args).await
}

/// As [`cli_as`], over TLS with `tls`'s CA and client certificate.
pub async fn cli_tls(
    port: u16,
    password: Option<&str>,
    tls: Option<&Certificates>,
    args: &[&str],
) -> String {
    let mut command = tokio::process::Command::new("redis-cli");
    if let Some(password) = password {
        command.env("REDISCLI_AUTH", password);
    }
    if let Some(tls) = tls {
        command
            .arg("--tls")
            .arg("--cacert")
            .arg(&tls.ca)
            .arg("--cert")
            .arg(&tls.client_cert)
            .arg("--key")
            .arg(&tls.client_key);
    }
    let output = command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("redis-cli must be installed (scripts/test installs redis-tools)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// One field of `INFO SECTION` (`role`, `master_repl_offset`, …).
pub async fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    info_field_of(&cli(port, &["INFO", section]).await, field)
}

/// Polls `check` every 100 ms for at most `limit`, then panics naming
/// `what`: for a failover or a cluster forming, which take seconds.
pub async fn within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened within {limit:?}: {what}");
}

fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "anteroom-test-{kind}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// A server's command line; with a password, it asks for it
/// (`requirepass`) and gives it to its master (`masterauth`).
fn server_args(port: u16, dir: &Path, password: Option<&str>) -> Vec<String> {
    let auth = password
        .map(|password| {
            [
                "--requirepass".to_owned(),
                password.to_owned(),
                "--masterauth".to_owned(),
                password.to_owned(),
            ]
        })
        .into_iter()
        .flatten();
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .chain([dir.display().to_string()])
    .chain(auth)
    .collect()
}

/// A primary, one replica and three sentinels (quorum 2) watching them as
/// [`SENTINEL_MASTER`], with short timeouts: a primary that stops answering
/// is declared down after 1 s and its replica promoted a second or two
/// later.
pub struct SentinelGroup {
    /// `servers[0]` started as the primary, `servers[1]` as its replica;
    /// `None` once killed.
    pub servers: [Option<RedisProcess>; 2],
    pub server_ports: [u16; 2],
    pub sentinels: Vec<RedisProcess>,
    pub passwords: Passwords,
    /// The certificates of a group that speaks only TLS (servers,
    /// replication and sentinels): the servers' and a client's, of a
    /// private CA.
    pub tls: Option<Certificates>,
    dir: PathBuf,
}

impl SentinelGroup {
    pub async fn start() -> SentinelGroup {
        SentinelGroup::start_with(Passwords::default()).await
    }

    /// A group whose servers and sentinels ask for `passwords`.
    pub async fn start_with(passwords: Passwords) -> SentinelGroup {
        SentinelGroup::start_with_tls(passwords, false).await
    }

    /// As [`SentinelGroup::start_with`]; with `tls`, every server and
    /// sentinel listens on its TLS port only (`port 0`, `tls-port`), and
    /// replication and the sentinels' own connections are TLS too
    /// (`tls-replication yes`), with certificates of a private CA made for
    /// it.
    pub async fn start_with_tls(passwords: Passwords, tls: bool) -> SentinelGroup {
        let dir = temp_dir("sentinel");
        let certificates = tls.then(|| Certificates::issue(&dir, "sentinel"));
        let mut group = SentinelGroup {
            servers: [None, None],
            server_ports: [free_port(), free_port()],
            sentinels: Vec::new(),
            passwords,
            tls: certificates,
            dir,
        };
        let [primary_port, replica_port] = group.server_ports;
        group.servers[0] = Some(group.start_server(primary_port, None).await);
        group.servers[1] = Some(group.start_server(replica_port, Some(primary_port)).await);
        group.wait_following(replica_port).await;
        for _ in 0..3 {
            let sentinel = group.start_sentinel(free_port(), primary_port).await;
            group.sentinels.push(sentinel);
        }
        // A failover needs every sentinel to know the replica and the other
        // sentinels (found through the primary's hello messages, every 2 s).
        for sentinel in &group.sentinels {
            let port = sentinel.port;
            let group = &group;
            within(
                "the sentinels know each other and the replica",
                Duration::from_secs(30),
                || async move {
                    let others = group
                        .sentinel_cli(port, &["SENTINEL", "SENTINELS", SENTINEL_MASTER])
                        .await;
                    let replicas = group
                        .sentinel_cli(port, &["SENTINEL", "REPLICAS", SENTINEL_MASTER])
                        .await;
                    others.matches("runid").count() >= 2
                        && replicas.contains(&replica_port.to_string())
                },
            )
            .await;
        }
        group
    }

    /// `host:port` of each sentinel, for `store.sentinels`.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect()
    }

    /// The port of the server the sentinels name as master now.
    pub async fn master_port(&self) -> Option<u16> {
        let port = self.sentinels.first()?.port;
        let reply = self
            .sentinel_cli(
                port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER],
            )
            .await;
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// `redis-cli` to the server on `port`, with the servers' password and
    /// the group's TLS.
    pub async fn server_cli(&self, port: u16, args: &[&str]) -> String {
        cli_tls(
            port,
            self.passwords.servers.as_deref(),
            self.tls.as_ref(),
            args,
        )
        .await
    }

    /// `redis-cli` to the sentinel on `port`, with the sentinels' password
    /// and the group's TLS.
    pub async fn sentinel_cli(&self, port: u16, args: &[&str]) -> String {
        cli_tls(
            port,
            self.passwords.sentinels.as_deref(),
            self.tls.as_ref(),
            args,
        )
        .await
    }

    /// Waits until the replica has everything the primary wrote (their
    /// replication offsets agree), so that a kill of the primary now loses
    /// nothing acknowledged.
    pub async fn wait_replicated(&self) {
        let [primary, replica] = self.server_ports;
        within(
            "the replica catches up",
            Duration::from_secs(20),
            || async move {
                let sent = self.server_field(primary, "master_repl_offset").await;
                let got = self.server_field(replica, "slave_repl_offset").await;
                sent.is_some() && sent == got
            },
        )
        .await;
    }

    /// `kill -9` server `index` (0: started as the primary).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut server) = self.servers[index].take() {
            server.kill();
        }
    }

    /// Starts server `index` again on its port, empty, as a master of its
    /// own: the sentinels then turn it into a replica of the current master.
    pub async fn restart(&mut self, index: usize) {
        let port = self.server_ports[index];
        self.servers[index] = Some(self.start_server(port, None).await);
    }

    /// Starts server `index` again on its port, empty, as a replica of
    /// server `of` (what the sentinels make of an old primary that comes
    /// back, without waiting the seconds they take to), and waits until it
    /// has synced.
    pub async fn restart_as_replica_of(&mut self, index: usize, of: usize) {
        let port = self.server_ports[index];
        self.servers[index] = Some(self.start_server(port, Some(self.server_ports[of])).await);
        self.wait_following(port).await;
    }

    /// A server on `port`, a replica of the one on `replica_of` if given.
    async fn start_server(&self, port: u16, replica_of: Option<u16>) -> RedisProcess {
        let password = self.passwords.servers.as_deref();
        let mut args = server_args(port, &self.dir, password);
        if let Some(primary_port) = replica_of {
            args.extend([
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                primary_port.to_string(),
            ]);
        }
        if let Some(certificates) = &self.tls {
            args = tls_args(args, port, certificates, &["--tls-replication", "yes"]);
        }
        RedisProcess::start_tls(port, &self.dir, &args, password, self.tls.as_ref()).await
    }

    async fn start_sentinel(&self, port: u16, primary_port: u16) -> RedisProcess {
        let mut conf = format!(
            "bind 127.0.0.1\ndaemonize no\ndir {dir}\n\
             sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
             sentinel failover-timeout {SENTINEL_MASTER} 3000\n\
             sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
            dir = self.dir.display()
        );
        match &self.tls {
            None => conf.push_str(&format!("port {port}\n")),
            Some(certificates) => conf.push_str(&format!(
                "port 0\ntls-port {port}\ntls-cert-file {cert}\ntls-key-file {key}\n\
                 tls-ca-cert-file {ca}\ntls-replication yes\ntls-auth-clients optional\n",
                cert = certificates.server_cert.display(),
                key = certificates.server_key.display(),
                ca = certificates.ca.display(),
            )),
        }
        // `sentinel auth-pass`: the sentinels' password to the servers;
        // `requirepass`: their own, which they also use with each other.
        if let Some(password) = &self.passwords.servers {
            conf.push_str(&format!(
                "sentinel auth-pass {SENTINEL_MASTER} {password}\n"
            ));
        }
        if let Some(password) = &self.passwords.sentinels {
            conf.push_str(&format!("requirepass {password}\n"));
        }
        let path = self.dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(&path, conf).expect("write the sentinel's config");
        let args = vec![path.display().to_string(), "--sentinel".to_owned()];
        RedisProcess::start_tls(
            port,
            &self.dir,
            &args,
            self.passwords.sentinels.as_deref(),
            self.tls.as_ref(),
        )
        .await
    }

    /// Waits until the server on `port` has synced with its primary.
    async fn wait_following(&self, port: u16) {
        within(
            "the replica follows its primary",
            Duration::from_secs(20),
            || async move {
                self.server_field(port, "master_link_status")
                    .await
                    .as_deref()
                    == Some("up")
            },
        )
        .await;
    }

    async fn server_field(&self, port: u16, field: &str) -> Option<String> {
        info_field_of(
            &self.server_cli(port, &["INFO", "replication"]).await,
            field,
        )
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        self.sentinels.clear();
        self.servers = [None, None];
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three primaries (no replicas), all slots assigned.
pub struct RedisCluster {
    pub nodes: Vec<RedisProcess>,
    /// Every node's `requirepass`, if any.
    pub password: Option<String>,
    /// The certificates of a cluster that speaks only TLS
    /// (`tls-cluster yes`): the nodes' and a client's, of a private CA.
    pub tls: Option<Certificates>,
    /// Each node's command line, to start it again.
    args: Vec<Vec<String>>,
    dir: PathBuf,
}

static SHARED_CLUSTER: OnceCell<RedisCluster> = OnceCell::const_new();
static SHARED_PROTECTED_CLUSTER: OnceCell<RedisCluster> = OnceCell::const_new();
static SHARED_TLS_CLUSTER: OnceCell<RedisCluster> = OnceCell::const_new();

impl RedisCluster {
    /// The test binary's one cluster, formed by the first test that asks:
    /// tests share it, each with rooms and buffers of its own.
    pub async fn shared() -> &'static RedisCluster {
        SHARED_CLUSTER.get_or_init(RedisCluster::start).await
    }

    /// The test binary's one cluster whose nodes ask for
    /// [`CLUSTER_PASSWORD`].
    pub async fn shared_with_password() -> &'static RedisCluster {
        SHARED_PROTECTED_CLUSTER
            .get_or_init(|| RedisCluster::start_with(Some(CLUSTER_PASSWORD)))
            .await
    }

    /// The test binary's one cluster that speaks only TLS, whose nodes
    /// ask for [`CLUSTER_PASSWORD`] too.
    pub async fn shared_with_tls() -> &'static RedisCluster {
        SHARED_TLS_CLUSTER
            .get_or_init(|| RedisCluster::start_with_tls(Some(CLUSTER_PASSWORD), true))
            .await
    }

    pub async fn start() -> RedisCluster {
        RedisCluster::start_with(None).await
    }

    /// A cluster whose nodes ask for `password` (`requirepass`).
    pub async fn start_with(password: Option<&str>) -> RedisCluster {
        RedisCluster::start_with_tls(password, false).await
    }

    /// As [`RedisCluster::start_with`]; with `tls`, every node listens on
    /// its TLS port only (`--port 0 --tls-port`) and the nodes speak TLS to
    /// each other (`tls-cluster yes`), with certificates of a private CA
    /// made for it.
    pub async fn start_with_tls(password: Option<&str>, tls: bool) -> RedisCluster {
        let dir = temp_dir("cluster");
        let certificates = tls.then(|| Certificates::issue(&dir, "cluster"));
        let mut nodes = Vec::new();
        let mut all_args = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let mut args = server_args(port, &dir, password);
            if let Some(certificates) = &certificates {
                args = tls_args(args, port, certificates, &["--tls-cluster", "yes"]);
            }
            args.extend([
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                "--cluster-config-file".to_owned(),
                dir.join(format!("nodes-{port}.conf")).display().to_string(),
                "--cluster-node-timeout".to_owned(),
                "2000".to_owned(),
            ]);
            nodes.push(
                RedisProcess::start_tls(port, &dir, &args, password, certificates.as_ref()).await,
            );
            all_args.push(args);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = cli_tls(nodes[0].port, password, certificates.as_ref(), &create).await;
        let cluster = RedisCluster {
            nodes,
            password: password.map(str::to_owned),
            tls: certificates,
            args: all_args,
            dir,
        };
        cluster
            .wait_whole(&format!("the cluster forms ({output})"))
            .await;
        cluster
    }

    /// Waits until every node says `cluster_state:ok`.
    async fn wait_whole(&self, what: &str) {
        let password = self.password.as_deref();
        let tls = self.tls.as_ref();
        for node in &self.nodes {
            let port = node.port;
            within(what, Duration::from_secs(30), || async move {
                info_field_of(
                    &cli_tls(port, password, tls, &["CLUSTER", "INFO"]).await,
                    "cluster_state",
                )
                .as_deref()
                    == Some("ok")
            })
            .await;
        }
    }

    /// `kill -9` node `index` (its data is gone: the nodes keep nothing
    /// on disk but the cluster's configuration).
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts node `index` again on its port, empty, with its cluster
    /// configuration: it takes back its slots, and the cluster is whole
    /// again (`cluster_state:ok` on every node).
    pub async fn restart(&mut self, index: usize) {
        let port = self.nodes[index].port;
        self.nodes[index] = RedisProcess::start_tls(
            port,
            &self.dir,
            &self.args[index],
            self.password.as_deref(),
            self.tls.as_ref(),
        )
        .await;
        self.wait_whole("the cluster is whole again").await;
    }

    /// The index of the node listening on `port`.
    pub fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|node| node.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// `redis-cli` to the node on `port`, with the cluster's password and
    /// TLS.
    pub async fn cli(&self, port: u16, args: &[&str]) -> String {
        cli_tls(port, self.password.as_deref(), self.tls.as_ref(), args).await
    }

    /// `host:port` of each node, for `store.cluster_nodes`.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect()
    }

    /// The port of the node that holds `key`'s slot.
    pub async fn owner_of(&self, key: &str) -> u16 {
        let first = self.nodes[0].port;
        // Without -c, redis-cli shows the redirection: `MOVED SLOT HOST:PORT`.
        let reply = self.cli(first, &["TYPE", key]).await;
        match reply.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["MOVED", _, address] | ["(error)", "MOVED", _, address] => address
                .rsplit(':')
                .next()
                .and_then(|port| port.parse().ok())
                .unwrap_or_else(|| panic!("a port in {reply:?}")),
            _ => first,
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `args` with the plain port closed (`--port 0`) and `port` the TLS
/// port instead, the server's certificate, and `extra` (TLS between the
/// servers too: `--tls-cluster yes` or `--tls-replication yes`).
fn tls_args(
    args: Vec<String>,
    port: u16,
    certificates: &Certificates,
    extra: &[&str],
) -> Vec<String> {
    let mut changed = Vec::with_capacity(args.len() + 12);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--port" {
            args.next();
            changed.extend(["--port".to_owned(), "0".to_owned()]);
            changed.extend(["--tls-port".to_owned(), port.to_string()]);
        } else {
            changed.push(arg);
        }
    }
    for (flag, path) in [
        ("--tls-cert-file", &certificates.server_cert),
        ("--tls-key-file", &certificates.server_key),
        ("--tls-ca-cert-file", &certificates.ca),
    ] {
        changed.extend([flag.to_owned(), path.display().to_string()]);
    }
    changed.extend(["--tls-auth-clients", "optional"].map(str::to_owned));
    changed.extend(extra.iter().map(|arg| arg.to_string()));
    changed
}

fn info_field_of(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|value| value.trim().to_owned())
}
