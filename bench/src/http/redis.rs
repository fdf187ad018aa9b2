//! The Redis the gateway's rooms live in: a private `redis-server` on a free
//! port (as the tests start one), or the operator's, by URL. The bench only
//! asks it `PING` and `INFO memory`, over a few lines of RESP.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

use super::tools::{self, Service, WorkDir};

/// Where Redis is, and the server if this run started it.
pub struct Redis {
    pub url: String,
    address: String,
    password: Option<String>,
    pub server: Option<Service>,
}

impl Redis {
    /// A private server that keeps nothing on disk.
    pub async fn start_private(work: &WorkDir) -> Result<Redis, String> {
        let binary = tools::program("redis-server", "redis-server").await?;
        let port = tools::free_ports(1)?[0];
        let dir = work.file("redis");
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let mut command = Command::new(binary);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir);
        let mut server = Service::spawn("redis-server", &mut command, work.file("redis.log"))?;
        server.wait_listening(port).await?;
        let mut redis = Redis::at(&format!("redis://127.0.0.1:{port}/0"))?;
        redis.server = Some(server);
        redis.ping().await?;
        Ok(redis)
    }

    /// An existing server: `redis://[:password@]host[:port][/db]`.
    pub fn at(url: &str) -> Result<Redis, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("--redis-url {url}: only redis:// URLs are supported"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let (password, host_port) = match authority.rsplit_once('@') {
            Some((user_info, host_port)) => {
                let password = user_info.rsplit(':').next().unwrap_or(user_info);
                (Some(password.to_owned()), host_port)
            }
            None => (None, authority),
        };
        let host_port = if host_port.is_empty() {
            "127.0.0.1"
        } else {
            host_port
        };
        let address = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:6379")
        };
        Ok(Redis {
            url: url.to_owned(),
            address,
            password: password.filter(|password| !password.is_empty()),
            server: None,
        })
    }

    pub async fn ping(&self) -> Result<(), String> {
        let reply = self.command(&["PING"]).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(format!(
                "Redis at {} answers PING with {reply}",
                self.address
            ))
        }
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub async fn used_memory(&self) -> Result<u64, String> {
        let info = self.command(&["INFO", "memory"]).await?;
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| format!("no used_memory in Redis's INFO memory:\n{info}"))
    }

    /// The server's version (`INFO server`).
    pub async fn version(&self) -> Result<String, String> {
        let info = self.command(&["INFO", "server"]).await?;
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned())
    }

    /// Sends one command on a fresh connection and reads a simple or bulk
    /// string reply.
    async fn command(&self, args: &[&str]) -> Result<String, String> {
        let exchange = async {
            let stream = TcpStream::connect(&self.address)
                .await
                .map_err(|error| format!("cannot connect to Redis at {}: {error}", self.address))?;
            let mut stream = BufReader::new(stream);
            if let Some(password) = &self.password {
                send(&mut stream, &["AUTH", password]).await?;
                read_reply(&mut stream).await?;
            }
            send(&mut stream, args).await?;
            read_reply(&mut stream).await
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| format!("Redis at {} did not answer within 5 s", self.address))?
    }
}

async fn send(stream: &mut BufReader<TcpStream>, args: &[&str]) -> Result<(), String> {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("cannot send to Redis: {error}"))
}

async fn read_reply(stream: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .map_err(|error| format!("cannot read from Redis: {error}"))?;
    let line = line.trim_end();
    match line.split_at_checked(1) {
        Some(("+", text)) => Ok(text.to_owned()),
        Some(("-", error)) => Err(format!("Redis: {error}")),
        Some(("$", length)) => {
            let length: usize = length
                .parse()
                .map_err(|_| format!("Redis sent a bad length: {line}"))?;
            let mut body = vec![0u8; length + 2];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|error| format!("cannot read from Redis: {error}"))?;
            body.truncate(length);
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        _ => Err(format!("unexpected reply from Redis: {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_urls() {
        let plain = Redis::at("redis://10.0.0.5:6380/0").expect("valid");
        assert_eq!(
            (plain.address.as_str(), plain.password),
            ("10.0.0.5:6380", None)
        );
        let secret = Redis::at("redis://:s3cret@localhost/2").expect("valid");
        assert_eq!(secret.address, "localhost:6379");
        assert_eq!(secret.password.as_deref(), Some("s3cret"));
        assert!(Redis::at("rediss://example:6379").is_err());
    }
}
