//! nginx, the yardstick: one instance on a generated config with two
//! servers, both on 127.0.0.1 in front of the same origin as the gateway.
//!
//! - `main`: `location /` proxies with upstream keep-alive (`keepalive`,
//!   `proxy_http_version 1.1`, `proxy_set_header Connection ""`), and
//!   `location = /_anteroom/status` answers `return 200` with the gateway's
//!   own status body, byte for byte;
//! - `limited`: `limit_req` at one request a minute per address
//!   (`burst=1 nodelay`, `limit_req_status 429`) in front of the proxy.
//!
//! `worker_processes auto` (one per CPU), `reuseport` (one listening socket
//! per worker, so the kernel spreads wrk's connections over them, fair to
//! nginx), `access_log off`.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::tools::{self, Service, WorkDir};

pub struct NginxPorts {
    pub main: u16,
    pub limited: u16,
    pub origin: u16,
}

pub struct Nginx {
    pub service: Service,
    pub version: String,
    pub workers: Vec<u32>,
}

/// The config text. `status_body` must not hold `'`, `\` or `$` (it is a
/// JSON document the gateway wrote).
pub fn config(dir: &Path, ports: &NginxPorts, keepalive: u32, status_body: &str) -> String {
    let dir = dir.display();
    let NginxPorts {
        main,
        limited,
        origin,
    } = ports;
    format!(
        r#"worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    limit_req_zone $binary_remote_addr zone=per_ip:10m rate=1r/m;

    upstream origin {{
        server 127.0.0.1:{origin};
        keepalive {keepalive};
    }}

    server {{
        listen 127.0.0.1:{main} reuseport;

        location = /_anteroom/status {{
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 '{status_body}';
        }}

        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}

    server {{
        listen 127.0.0.1:{limited} reuseport;

        location / {{
            limit_req zone=per_ip burst=1 nodelay;
            limit_req_status 429;
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}

impl Nginx {
    pub async fn start(
        binary: &Path,
        work: &WorkDir,
        ports: &NginxPorts,
        keepalive: u32,
        status_body: &str,
    ) -> Result<Nginx, String> {
        if status_body.contains(['\'', '\\', '$']) {
            return Err(format!(
                "the status body cannot be written into nginx's config as it is: {status_body}"
            ));
        }
        let prefix: PathBuf = work.file("nginx");
        std::fs::create_dir_all(&prefix)
            .map_err(|error| format!("cannot create {}: {error}", prefix.display()))?;
        let conf = work.write(
            "nginx.conf",
            &config(&prefix, ports, keepalive, status_body),
        )?;
        let error_log = prefix.join("error.log");
        let prefixed = |command: &mut Command| {
            command
                .arg("-p")
                .arg(&prefix)
                .arg("-e")
                .arg(&error_log)
                .arg("-c")
                .arg(&conf);
        };
        let mut test = Command::new(binary);
        prefixed(test.arg("-t").arg("-q"));
        tools::command_output(&mut test)
            .await
            .map_err(|error| format!("nginx rejects the generated config: {error}"))?;
        let mut command = Command::new(binary);
        prefixed(&mut command);
        command.arg("-g").arg("daemon off;");
        let mut service = Service::spawn("nginx", &mut command, work.file("nginx.log"))?;
        service.wait_listening(ports.main).await?;
        service.wait_listening(ports.limited).await?;
        // The master forks its workers right after binding.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let workers = tools::children_of(service.pid());
        let version = version(binary).await;
        Ok(Nginx {
            service,
            version,
            workers,
        })
    }

    /// The master and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.service.pid()];
        pids.extend(&self.workers);
        pids
    }
}

/// `nginx -v` (which writes to stderr).
async fn version(binary: &Path) -> String {
    match Command::new(binary).arg("-v").output().await {
        Ok(output) => String::from_utf8_lossy(&output.stderr)
            .trim()
            .trim_start_matches("nginx version: ")
            .trim_start_matches("nginx/")
            .to_owned(),
        Err(_) => "unknown".to_owned(),
    }
}
