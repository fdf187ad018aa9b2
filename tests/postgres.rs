//! A private, empty PostgreSQL database per test on the test server, for
//! the postgres sink's suites.

use std::net::SocketAddr;

/// The server the PostgreSQL tests use when `ANTEROOM_TEST_POSTGRES_URL` is
/// not set: trust auth on loopback, as `scripts/test` arranges.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A private, empty database on the test PostgreSQL server, so tests run in
/// parallel; dropped (with any connections left) when this is dropped.
pub struct Postgres {
    pub name: String,
    url: String,
    admin_url: String,
}

impl Postgres {
    /// Creates `anteroom_test_<unique>` on the server named by
    /// `ANTEROOM_TEST_POSTGRES_URL` (default [`DEFAULT_POSTGRES_URL`]).
    pub async fn database() -> Postgres {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CREATED: AtomicU64 = AtomicU64::new(0);

        let admin_url = std::env::var("ANTEROOM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "anteroom_test_{}_{}_{nanos}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let admin = postgres_connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL at ANTEROOM_TEST_POSTGRES_URL (default {DEFAULT_POSTGRES_URL}) is \
                 needed (scripts/test starts one): {error}"
            )
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        Postgres {
            url: url_with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// The database's URL, as a `postgres_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's TCP address, for a proxy in front of it. Panics when
    /// the tests reach PostgreSQL over a Unix socket.
    pub async fn address(&self) -> SocketAddr {
        let config: tokio_postgres::Config = self.url.parse().expect("a postgres URL");
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => panic!("this test needs PostgreSQL over TCP, not {}", self.url),
        };
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .unwrap_or_else(|| panic!("cannot resolve {host}"))
    }

    /// The database's URL with the server at `authority` (`host:port`)
    /// instead, e.g. a [`TcpProxy`] in front of it.
    pub fn url_at(&self, authority: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a postgres:// URL");
        let (user, host_and_path) = match rest.split_once('@') {
            Some((user, after)) => (format!("{user}@"), after),
            None => (String::new(), rest),
        };
        let path_start = host_and_path
            .find(['/', '?'])
            .unwrap_or(host_and_path.len());
        format!(
            "{scheme}://{user}{authority}{}",
            &host_and_path[path_start..]
        )
    }

    /// A fresh connection to the database, for a test's own queries.
    pub async fn client(&self) -> tokio_postgres::Client {
        postgres_connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which must not be blocked on:
        // a thread of its own with its own runtime drops the database.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = postgres_connect(&admin_url).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

async fn postgres_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database (the path) replaced by `database`; the user,
/// host (a socket directory too) and query are kept.
fn url_with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map(|start| &tail[start..]).unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}
