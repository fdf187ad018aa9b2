//! `[store]`: the backend, Redis's URL, the files TLS to Redis uses, and
//! how many replicas a booking waits for.
//!
//! The TLS files are read here (this crate is the one that reads files) and
//! each certificate in them parsed, so that `--check` finds a missing file
//! or a broken certificate. Whether a client key matches its certificate,
//! and whether Redis's certificate chains to the CA, are for the TLS
//! library to tell at startup and at connect.

use std::num::NonZeroU32;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Result;
use crate::defaults;
use crate::raw::RawStore;
use crate::{Backend, ClientIdentity, MAX_PEM_FILE_BYTES, OnError, PemFile, RedisTls, StoreConfig};

pub(super) fn store(raw: RawStore, base: &Path) -> Result<StoreConfig> {
    let backend = match raw.backend.as_deref().unwrap_or(defaults::BACKEND) {
        "memory" => Backend::Memory,
        "redis" => {
            let url = raw.redis_url.as_deref().unwrap_or(defaults::REDIS_URL);
            let scheme = redis_url(url).map_err(|problem| format!("store.redis_url: {problem}"))?;
            let tls = tls(&raw, scheme, base)?;
            Backend::Redis {
                url: url.to_owned(),
                tls,
            }
        }
        other => {
            return Err(format!(
                "store.backend: {other:?} must be \"memory\" or \"redis\""
            ));
        }
    };
    let on_error = match raw.on_error.as_deref().unwrap_or(defaults::ON_ERROR) {
        "wait" => OnError::Wait,
        "admit" => OnError::Admit,
        other => {
            return Err(format!(
                "store.on_error: {other:?} must be \"wait\" or \"admit\""
            ));
        }
    };
    let min_replicas_acked = min_replicas_acked(raw.min_replicas_acked, &backend)?;
    Ok(StoreConfig {
        backend,
        on_error,
        min_replicas_acked,
    })
}

/// `min_replicas_acked`: in range, and only where there are replicas to
/// wait for.
fn min_replicas_acked(value: Option<u64>, backend: &Backend) -> Result<Option<NonZeroU32>> {
    let key = "store.min_replicas_acked";
    let value = defaults::MIN_REPLICAS_ACKED
        .value(value)
        .map_err(|problem| format!("{key}: {problem}"))?;
    let Some(replicas) = u32::try_from(value).ok().and_then(NonZeroU32::new) else {
        return Ok(None);
    };
    if *backend == Backend::Memory {
        return Err(format!(
            "{key}: {replicas} needs backend = \"redis\": the memory store has no replicas to \
             wait for (leave it out, or set it to 0)"
        ));
    }
    Ok(Some(replicas))
}

/// Checks the URL and returns its scheme.
fn redis_url(value: &str) -> Result<&'static str> {
    let url = url::Url::parse(value).map_err(|error| format!("not a valid URL ({error})"))?;
    let scheme = match url.scheme() {
        "redis" => "redis",
        "rediss" => "rediss",
        "unix" => "unix",
        other => {
            return Err(format!(
                "scheme {other:?} is not supported; use redis://, rediss:// or unix://"
            ));
        }
    };
    if scheme == "unix" {
        if url.path().is_empty() || url.path() == "/" {
            return Err(
                "a unix:// URL needs the socket's path, like unix:///run/redis.sock".to_owned(),
            );
        }
    } else if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    // The client's only fragment is `#insecure`: TLS without checking the
    // server's certificate, which anteroom does not offer (nor build).
    if url.fragment().is_some() {
        return Err(
            "must not have a fragment (#insecure is not supported: to trust a private CA, \
             set store.tls_ca_file)"
                .to_owned(),
        );
    }
    Ok(scheme)
}

fn tls(raw: &RawStore, scheme: &str, base: &Path) -> Result<RedisTls> {
    let keys = [
        ("store.tls_ca_file", &raw.tls_ca_file),
        ("store.tls_cert_file", &raw.tls_cert_file),
        ("store.tls_key_file", &raw.tls_key_file),
    ];
    if scheme != "rediss" {
        if let Some((key, _)) = keys.iter().find(|(_, value)| value.is_some()) {
            return Err(format!(
                "{key}: set, but store.redis_url is {scheme}://, which is not TLS; \
                 use rediss:// (or leave the TLS keys out)"
            ));
        }
        return Ok(RedisTls::default());
    }
    let ca = match &raw.tls_ca_file {
        Some(path) => Some(certificates(
            "store.tls_ca_file",
            path,
            base,
            Role::Authority,
        )?),
        None => None,
    };
    let client = match (&raw.tls_cert_file, &raw.tls_key_file) {
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert: certificates("store.tls_cert_file", cert, base, Role::Client)?,
            key: private_key("store.tls_key_file", key, base)?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(
                "store.tls_cert_file: set without store.tls_key_file; mutual TLS needs both"
                    .to_owned(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "store.tls_key_file: set without store.tls_cert_file; mutual TLS needs both"
                    .to_owned(),
            );
        }
    };
    Ok(RedisTls { ca, client })
}

/// What a file of certificates is for: trusted roots, or the chain we
/// present (its first certificate is ours).
#[derive(Clone, Copy)]
enum Role {
    Authority,
    Client,
}

fn certificates(key: &str, path: &str, base: &Path, role: Role) -> Result<PemFile> {
    let file = read(key, path, base)?;
    let shown = file.path.display();
    let mut count = 0;
    for (index, item) in CertificateDer::pem_slice_iter(&file.pem).enumerate() {
        let number = index + 1;
        let der = item.map_err(|error| {
            format!("{key}: {shown}: certificate {number} is not valid PEM ({error})")
        })?;
        let parsed = match (role, index) {
            (Role::Client, 0) => webpki::EndEntityCert::try_from(&der).map(drop),
            _ => webpki::anchor_from_trusted_cert(&der).map(drop),
        };
        parsed.map_err(|error| {
            format!("{key}: {shown}: certificate {number} is not a valid certificate ({error})")
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "{key}: {shown}: has no certificate (PEM, -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(file)
}

fn private_key(key: &str, path: &str, base: &Path) -> Result<PemFile> {
    let file = read(key, path, base)?;
    PrivateKeyDer::from_pem_slice(&file.pem).map_err(|error| {
        format!(
            "{key}: {}: has no private key (PEM, -----BEGIN PRIVATE KEY----- or the RSA or \
             EC kinds): {error}",
            file.path.display()
        )
    })?;
    Ok(file)
}

fn read(key: &str, path: &str, base: &Path) -> Result<PemFile> {
    if path.trim().is_empty() {
        return Err(format!("{key}: must not be empty (leave it out instead)"));
    }
    let path = base.join(path);
    let shown = path.display();
    let size = std::fs::metadata(&path)
        .map_err(|error| format!("{key}: {shown}: cannot read: {error}"))?
        .len();
    if size > MAX_PEM_FILE_BYTES {
        return Err(format!(
            "{key}: {shown}: is {size} bytes, more than a PEM file of certificates or a key \
             needs (at most {MAX_PEM_FILE_BYTES})"
        ));
    }
    let pem =
        std::fs::read(&path).map_err(|error| format!("{key}: {shown}: cannot read: {error}"))?;
    Ok(PemFile { path, pem })
}
