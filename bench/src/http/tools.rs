//! What the run needs from the machine: programs (installed with apt-get
//! when missing), free ports, a private directory, child processes that
//! stop with the run, and the CPU time processes have used.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

/// Set once `apt-get update` has run in this process.
static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// The path of `program`, installing Debian package `package` when it is
/// missing (needs root).
pub async fn program(program: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(path) = find_program(program) {
        return Ok(path);
    }
    eprintln!("{program} is missing: installing the Debian package {package}...");
    apt_install(package).await?;
    find_program(program)
        .ok_or_else(|| format!("{program} is still missing after installing {package}"))
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // nginx lives in /usr/sbin, which a non-login PATH may lack.
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

async fn apt_install(package: &str) -> Result<(), String> {
    let uid = command_output(Command::new("id").arg("-u")).await?;
    if uid.trim() != "0" {
        return Err(format!("{package} is missing and installing it needs root"));
    }
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run_quietly(Command::new("apt-get").args(["update", "-qq"])).await?;
    }
    // Keep the package's post-install from starting a system nginx on port
    // 80: we run our own, in the foreground, on a private config. The policy
    // file is ours only if it was not there before.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        write_executable(policy, "#!/bin/sh\nexit 101\n")?;
    }
    let installed = run_quietly(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends", package]),
    )
    .await;
    if own_policy {
        let _ = std::fs::remove_file(policy);
    }
    installed.map_err(|error| format!("apt-get install {package} failed: {error}"))
}

fn write_executable(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|error| format!("cannot make {} executable: {error}", path.display()))
}

async fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| format!("cannot start: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A command's standard output, if it succeeds.
pub async fn command_output(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| format!("cannot start {command:?}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `count` distinct ports that nobody listened on a moment ago (bound all at
/// once so that they differ; another process could take one before we do,
/// which is unlikely).
pub fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("cannot find a free port: {error}"))?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|addr| addr.port()))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("cannot find a free port: {error}"))
}

/// Cryptographically random bytes as hex (keys and tokens of the run).
pub fn random_hex(bytes: usize) -> Result<String, String> {
    use std::io::Read;
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut buffer))
        .map_err(|error| format!("cannot read /dev/urandom: {error}"))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The run's private directory, removed when dropped.
pub struct WorkDir {
    pub path: PathBuf,
}

impl WorkDir {
    pub fn create() -> Result<WorkDir, String> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!(
            "anteroom-bench-http-{}-{}",
            std::process::id(),
            random_hex(4)?
        ));
        std::fs::create_dir_all(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        // nginx's workers run as an unprivileged user when started as root.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|error| format!("cannot open up {}: {error}", path.display()))?;
        Ok(WorkDir { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let path = self.file(name);
        std::fs::write(&path, text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        Ok(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A process the run started: stopped (SIGTERM, then SIGKILL after a grace)
/// when dropped, so nothing outlives the run, also on an early error.
pub struct Service {
    pub name: &'static str,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Service {
    /// Starts `command` with its output in `log`.
    pub fn spawn(
        name: &'static str,
        command: &mut Command,
        log: PathBuf,
    ) -> Result<Service, String> {
        let file = std::fs::File::create(&log)
            .map_err(|error| format!("cannot create {}: {error}", log.display()))?;
        let err_file = file
            .try_clone()
            .map_err(|error| format!("cannot share {}: {error}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start {name}: {error}"))?;
        let pid = child
            .id()
            .ok_or_else(|| format!("{name} exited at once; its log:\n{}", read_log(&log)))?;
        Ok(Service {
            name,
            child,
            pid,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `Err` with the log if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                read_log(&self.log)
            )),
            Err(error) => Err(format!("cannot watch {}: {error}", self.name)),
        }
    }

    /// Waits until something accepts TCP connections on `port` (no HTTP
    /// request: for nginx's `limit_req`, a request would spend the
    /// allowance).
    pub async fn wait_listening(&mut self, port: u16) -> Result<(), String> {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            self.check_running()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "{} is not listening on 127.0.0.1:{port} after 10 s; its log:\n{}",
            self.name,
            read_log(&self.log)
        ))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // SIGTERM first: nginx's master stops its workers, the gateway
        // drains. tokio's kill_on_drop only sends SIGKILL, which would leave
        // nginx's workers behind.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.start_kill();
    }
}

pub fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The end of a log says why a process stopped.
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// CPU seconds (user + system, all threads) a process has used so far, and,
/// as the second figure, those of the children it has waited for.
pub fn cpu_seconds(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
    let own = ticks(11)? + ticks(12)?;
    let children = ticks(13)? + ticks(14)?;
    // The kernel reports in USER_HZ, which is 100 on Linux.
    Some((own / 100.0, children / 100.0))
}

/// The processes whose parent is `parent` (nginx's workers).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
