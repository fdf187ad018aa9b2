//! A buffered request as stored: everything a worker needs to replay it.

use serde::{Deserialize, Serialize};

mod params;

pub use params::{BodyProblem, ParamSource, check_body, lookup_path};

/// One buffered write request. Stored as a line of JSON (the metadata)
/// followed by the raw body, so a binary body costs nothing to encode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferedRequest {
    pub method: String,
    /// Path and query, as the client sent them.
    pub target: String,
    /// The request's headers as they would go upstream, in order (the
    /// gateway's own cookies and hop-by-hop headers removed). Values are
    /// stored byte for byte: each byte as the character of the same number
    /// (see [`header_text`]), since a header may carry any byte.
    pub headers: Vec<(String, String)>,
    /// The visitor's pass id: which admitted visitor sent it.
    pub pass: String,
    /// The client address the gateway saw (after trusted proxies).
    pub client: String,
    /// Milliseconds since the Unix epoch when the gateway received it.
    pub received_at: u64,
    /// The client's own `Idempotency-Key`, as sent, for the operator. The
    /// store, the sink and the site know the request by a key scoped to the
    /// visitor instead (the gateway's `intake::key`). Absent when the client
    /// sent none, and in requests stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_idempotency_key: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// Why stored bytes are not a [`BufferedRequest`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("no metadata line")]
    NoMetadataLine,
    #[error("metadata: {0}")]
    Metadata(#[source] serde_json::Error),
}

impl BufferedRequest {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail.
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes.extend_from_slice(&self.body);
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<BufferedRequest, DecodeError> {
        let split = bytes
            .iter()
            .position(|&byte| byte == b'\n')
            .ok_or(DecodeError::NoMetadataLine)?;
        let mut request: BufferedRequest =
            serde_json::from_slice(&bytes[..split]).map_err(DecodeError::Metadata)?;
        request.body = bytes[split + 1..].to_vec();
        Ok(request)
    }

    /// A digest of what makes this request this request: method, target and
    /// body. The same idempotency key with another fingerprint is a different
    /// request reusing the key.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        digest.update(self.method.as_bytes());
        digest.update(b"\n");
        digest.update(self.target.as_bytes());
        digest.update(b"\n");
        digest.update(&self.body);
        format!("{:x}", digest.finalize())
    }

    /// The first header named `name` (ASCII case-insensitive), as bytes.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| header_bytes(value))
    }
}

/// A header value's bytes as text, each byte the character of the same
/// number (Latin-1), so that any value round-trips through JSON.
pub fn header_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}

/// The bytes of a value made by [`header_text`].
pub fn header_bytes(text: &str) -> Vec<u8> {
    text.chars()
        .map(|character| u8::try_from(u32::from(character)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip_byte_for_byte() {
        let value = "caff\u{e8}=1; s=\u{1f600}".as_bytes().to_vec();
        let mut all: Vec<u8> = (0..=255).collect();
        all.extend_from_slice(&value);
        assert_eq!(header_bytes(&header_text(&all)), all);
    }

    #[test]
    fn round_trips_with_a_binary_body() {
        let request = BufferedRequest {
            method: "POST".into(),
            target: "/api/bookings?x=1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            pass: "p1".into(),
            client: "127.0.0.1".into(),
            received_at: 42,
            client_idempotency_key: Some("k-1".into()),
            body: vec![0, b'\n', 255, b'{'],
        };
        let decoded = BufferedRequest::decode(&request.encode()).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(
            decoded.header("Content-Type").as_deref(),
            Some(&b"application/json"[..])
        );
        assert!(matches!(
            BufferedRequest::decode(b"garbage"),
            Err(DecodeError::NoMetadataLine)
        ));
        // Stored before the client's key was kept: read without it.
        let earlier = br#"{"method":"POST","target":"/b","headers":[],"pass":"p","client":"::1","received_at":1}
{}"#;
        let earlier = BufferedRequest::decode(earlier).unwrap();
        assert_eq!(earlier.client_idempotency_key, None);
        assert_eq!(earlier.body, b"{}");
        let broken = BufferedRequest::decode(b"{\n").unwrap_err();
        assert!(broken.to_string().starts_with("metadata: "), "{broken}");
        assert!(std::error::Error::source(&broken).is_some());
    }
}
