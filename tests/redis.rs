//! A private `redis-server` per test, on a free port, so tests run in
//! parallel and can kill, freeze or restart their Redis on purpose, or run
//! it as a replica of another (and promote it, or demote a primary); and a
//! counter of the commands clients send it (`MONITOR`), for the request
//! path's cost budget.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::free_port;

/// A private `redis-server`, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: std::path::PathBuf,
    durable: bool,
    /// The port of the primary it replicates, started as a replica.
    replica_of: Option<u16>,
}

impl RedisServer {
    /// A server that keeps nothing on disk: a restart starts it empty.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(false).await
    }

    /// A server with the append-only file on and fsynced on every write
    /// (`appendonly yes`, `appendfsync always`): whatever it acknowledged
    /// survives a kill, and a restart reloads it.
    pub async fn start_durable() -> RedisServer {
        RedisServer::start_with(true).await
    }

    /// A durable server ([`RedisServer::start_durable`]) that replicates
    /// `primary` (`--replicaof`), once its first sync is done: it has
    /// everything `primary` had.
    pub async fn start_replica_of(primary: &RedisServer) -> RedisServer {
        RedisServer::start_replica_of_port(primary.port).await
    }

    /// As [`RedisServer::start_replica_of`], for a primary at `port` of
    /// 127.0.0.1: another server's, or a [`crate::TcpProxy`]'s in front of
    /// it (a link the test can stall).
    pub async fn start_replica_of_port(port: u16) -> RedisServer {
        let mut replica = RedisServer::new(true, Some(port));
        replica.spawn().await;
        replica.wait_until_in_sync().await;
        replica
    }

    async fn start_with(durable: bool) -> RedisServer {
        let mut server = RedisServer::new(durable, None);
        server.spawn().await;
        server
    }

    fn new(durable: bool, replica_of: Option<u16>) -> RedisServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("anteroom-test-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir for redis");
        RedisServer {
            child: None,
            port,
            dir,
            durable,
            replica_of,
        }
    }

    /// Waits until this replica's link to its primary is up and its first
    /// sync done (`master_link_status:up`).
    pub async fn wait_until_in_sync(&self) {
        for _ in 0..400 {
            if self
                .text(&["INFO", "replication"])
                .await
                .contains("master_link_status:up")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the replica on port {} never synced", self.port);
    }

    /// Makes this replica a primary (`REPLICAOF NO ONE`), as a failover
    /// does: it keeps its data and takes writes.
    pub async fn promote(&mut self) {
        let reply = self.text(&["REPLICAOF", "NO", "ONE"]).await;
        assert_eq!(reply, "OK", "REPLICAOF NO ONE");
        self.replica_of = None;
    }

    /// Makes this server a replica of `primary` (`REPLICAOF`), as a demoted
    /// primary rejoins after a failover: from then on it refuses writes
    /// (`READONLY`).
    pub async fn demote_to(&mut self, primary: &RedisServer) {
        let port = primary.port.to_string();
        let reply = self.text(&["REPLICAOF", "127.0.0.1", &port]).await;
        assert_eq!(reply, "OK", "REPLICAOF");
        self.replica_of = Some(primary.port);
    }

    /// Runs one command on its own connection and returns its reply as
    /// text: a status (`OK`), an error (`-ERR …`, with its dash), a bulk
    /// string (`INFO`'s), or an integer's digits.
    pub async fn text(&self, command: &[&str]) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let mut request = format!("*{}\r\n", command.len());
        for part in command {
            request.push_str(&format!("${}\r\n{part}\r\n", part.len()));
        }
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to redis");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the command");
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).await.expect("the reply");
        let first = first.trim_end();
        match first.split_at_checked(1) {
            Some(("$", length)) => {
                let length: usize = length.parse().unwrap_or(0);
                let mut bulk = vec![0; length + 2];
                reader.read_exact(&mut bulk).await.expect("the bulk reply");
                bulk.truncate(length);
                String::from_utf8_lossy(&bulk).into_owned()
            }
            Some(("+" | ":", rest)) => rest.to_owned(),
            _ => first.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL); its data is gone.
    pub fn kill(&mut self) {
        crate::kill_and_wait(&mut self.child);
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers,
    /// the data is kept.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        crate::signal(self.child.as_ref(), signal);
    }

    /// Kills the server and starts it again on the same port: empty, or,
    /// if it was started durable, with the data it had acknowledged.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let append_only: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let replica_of: Vec<String> = match self.replica_of {
            Some(port) => vec![
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                port.to_string(),
            ],
            None => Vec::new(),
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(append_only)
            .args(&replica_of)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Starts counting the commands clients send to this server (round
    /// trips' worth: commands that scripts run inside Redis are not counted).
    pub async fn monitor(&self) -> CommandCounter {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to redis");
        stream
            .write_all(b"MONITOR\r\n")
            .await
            .expect("send MONITOR");
        let mut lines = BufReader::new(stream).lines();
        let first = lines.next_line().await.expect("MONITOR reply");
        assert_eq!(first.as_deref(), Some("+OK"));
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let log = Arc::new(Mutex::new(Vec::new()));
        let logged = log.clone();
        let (markers_seen, markers) = watch::channel(0);
        let task = tokio::spawn(async move {
            // Lines look like `+1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" ...`,
            // or `[0 lua]` for a command a script ran.
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(" lua]") {
                    continue;
                }
                let marker = marker_in(&line);
                if marker.is_none() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                // A std Mutex: a push, never held across an await.
                if let Ok(mut log) = logged.lock() {
                    log.push(line);
                }
                if let Some(marker) = marker {
                    markers_seen.send_replace(marker);
                }
            }
        });
        CommandCounter {
            port: self.port,
            count,
            log,
            markers_sent: AtomicU64::new(0),
            markers,
            task,
        }
    }

    /// Runs one command whose reply is an integer (`EXISTS`, `SCARD`,
    /// `PTTL`, …) on its own connection, to look at a key a test cares
    /// about.
    pub async fn integer(&self, command: &[&str]) -> i64 {
        let reply = self.text(command).await;
        reply
            .parse()
            .unwrap_or_else(|_| panic!("{command:?}: not an integer reply: {reply:?}"))
    }

    /// The server's clock (`TIME`) in milliseconds: the store's clock, on
    /// which the room scripts keep every time.
    pub async fn time_ms(&self) -> u64 {
        const NOW: &str = "local time = redis.call('TIME') \
                           return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)";
        let now = self.integer(&["EVAL", NOW, "0"]).await;
        u64::try_from(now).unwrap_or_else(|_| panic!("TIME before 1970: {now}"))
    }

    async fn ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Counts commands clients send to a Redis (see [`RedisServer::monitor`]).
pub struct CommandCounter {
    port: u16,
    count: Arc<AtomicU64>,
    /// Every line MONITOR showed for a command a client sent, markers
    /// included, in the order Redis ran them.
    log: Arc<Mutex<Vec<String>>>,
    /// Markers [`CommandCounter::seen`] has sent, and the last one MONITOR
    /// has shown.
    markers_sent: AtomicU64,
    markers: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

/// What `seen` sends Redis (`ECHO` with this and a number); not counted.
const MARKER: &str = "anteroom-harness-marker-";

impl CommandCounter {
    /// Commands Redis has run so far (markers aside). Redis shows MONITOR
    /// each command as it runs it, in order, so once a marker of ours, sent
    /// now, has come through, so has every command run before it: the
    /// figure is complete without waiting out MONITOR's lag.
    pub async fn seen(&self) -> u64 {
        self.mark().await;
        self.count.load(Ordering::SeqCst)
    }

    /// Every command clients have sent so far, as MONITOR showed them
    /// (`+1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" ...`), in the order
    /// Redis ran them, with the markers of [`CommandCounter::mark`] among
    /// them; complete up to now, as for [`CommandCounter::seen`].
    pub async fn lines(&self) -> Vec<String> {
        self.mark().await;
        match self.log.lock() {
            Ok(log) => log.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a marker among the commands, now, and waits until MONITOR has
    /// shown it: a point in the order of [`CommandCounter::lines`], which
    /// the returned text (the marker, quoted) finds.
    pub async fn mark(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let marker = self.markers_sent.fetch_add(1, Ordering::SeqCst) + 1;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to redis");
        stream
            .write_all(format!("ECHO {MARKER}{marker}\r\n").as_bytes())
            .await
            .expect("send the marker");
        let mut reply = [0; 64];
        let _ = stream.read(&mut reply).await;
        let mut markers = self.markers.clone();
        // Only a guard against a test hanging if MONITOR breaks; the marker
        // comes through in a moment.
        tokio::time::timeout(
            Duration::from_secs(30),
            markers.wait_for(|seen| *seen >= marker),
        )
        .await
        .expect("MONITOR shows the marker")
        .expect("the MONITOR connection is open");
        format!("\"{MARKER}{marker}\"")
    }
}

/// The number of a marker of ours in a MONITOR line, if it is one:
/// `... "ECHO" "anteroom-harness-marker-7"`.
fn marker_in(line: &str) -> Option<u64> {
    let (_, after) = line.split_once(MARKER)?;
    after.split('"').next()?.parse().ok()
}

impl Drop for CommandCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
