//! What a postgres statement reads from a buffered request: each entry of a
//! buffer's `params` names where one `$n` takes its value from. The intake
//! checks a body against them before storing it ([`check_body`]); the
//! worker's postgres sink reads the values when it applies the request.

use serde_json::Value;

/// Where a parameter's value comes from: one entry of `params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamSource {
    /// `$idempotency_key`: the request's idempotency key.
    IdempotencyKey,
    /// `$receipt`: the request's receipt id.
    Receipt,
    /// `$body`: the whole body, as JSON.
    Body,
    /// A dotted path into the JSON body; a numeric segment indexes an array.
    Path(String),
}

/// Why a body cannot give the parameters its buffer's statement reads. The
/// message is the intake's `422` answer, in the client's words.
#[derive(Debug, thiserror::Error)]
pub enum BodyProblem {
    #[error("the body is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error("the body must be a JSON object or array")]
    NotAContainer,
    #[error("the body has no {0:?}")]
    Missing(String),
}

impl ParamSource {
    /// An entry of `params`, as the config validated it.
    pub fn parse(param: &str) -> ParamSource {
        match param {
            "$idempotency_key" => ParamSource::IdempotencyKey,
            "$receipt" => ParamSource::Receipt,
            "$body" => ParamSource::Body,
            path => ParamSource::Path(path.to_owned()),
        }
    }

    pub fn reads_body(&self) -> bool {
        matches!(self, ParamSource::Body | ParamSource::Path(_))
    }

    /// The entry as written in `params`.
    pub fn name(&self) -> &str {
        match self {
            ParamSource::IdempotencyKey => "$idempotency_key",
            ParamSource::Receipt => "$receipt",
            ParamSource::Body => "$body",
            ParamSource::Path(path) => path,
        }
    }
}

/// Checks, at intake, that `body` can give every parameter `params` reads
/// from it: the body is a JSON object or array holding each path (any value,
/// `null` included; types are checked when the request is applied). A body
/// no parameter reads is not looked at.
pub fn check_body(params: &[String], body: &[u8]) -> Result<(), BodyProblem> {
    let sources: Vec<ParamSource> = params
        .iter()
        .map(|param| ParamSource::parse(param))
        .collect();
    if !sources.iter().any(ParamSource::reads_body) {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(body).map_err(BodyProblem::NotJson)?;
    if !(body.is_object() || body.is_array()) {
        return Err(BodyProblem::NotAContainer);
    }
    for source in &sources {
        if let ParamSource::Path(path) = source
            && lookup_path(&body, path).is_none()
        {
            return Err(BodyProblem::Missing(path.clone()));
        }
    }
    Ok(())
}

/// The value at a dotted `path`: object keys, or array indexes for a
/// numeric segment.
pub fn lookup_path<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(body, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) if segment.bytes().all(|byte| byte.is_ascii_digit()) => {
                items.get(segment.parse::<usize>().ok()?)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(list: &[&str]) -> Vec<String> {
        list.iter().map(|param| param.to_string()).collect()
    }

    /// The problem's words, as the intake answers them.
    fn checked(params: &[String], body: &[u8]) -> Result<(), String> {
        check_body(params, body).map_err(|problem| problem.to_string())
    }

    #[test]
    fn check_body_wants_a_json_container_holding_every_path() {
        let needs = params(&["slot_id", "patient.name", "$idempotency_key"]);
        assert_eq!(
            checked(&needs, br#"{"slot_id": 1, "patient": {"name": null}}"#),
            Ok(())
        );
        assert_eq!(
            checked(&needs, br#"{"slot_id": 1, "patient": {}}"#),
            Err("the body has no \"patient.name\"".to_owned())
        );
        assert_eq!(
            checked(&needs, b"17"),
            Err("the body must be a JSON object or array".to_owned())
        );
        assert!(
            checked(&needs, b"slot_id=1")
                .unwrap_err()
                .starts_with("the body is not JSON")
        );
        assert_eq!(
            checked(&params(&["0", "1.name"]), br#"[7, {"name": "x"}]"#),
            Ok(())
        );
        assert_eq!(checked(&params(&["$body"]), b"[]"), Ok(()));
        assert!(checked(&params(&["$body"]), b"").is_err());
        assert_eq!(
            checked(&params(&["$receipt", "$idempotency_key"]), b""),
            Ok(())
        );
        assert_eq!(checked(&[], b"anything"), Ok(()));
    }

    #[test]
    fn a_body_that_is_not_json_keeps_the_parser_error() {
        let problem = check_body(&params(&["slot_id"]), b"{").unwrap_err();
        let source = std::error::Error::source(&problem).expect("the JSON error");
        assert!(source.is::<serde_json::Error>(), "{source:?}");
    }

    #[test]
    fn paths_walk_objects_and_index_arrays() {
        let body = json!({
            "slot_id": 7,
            "patient": { "name": "Ada", "tags": ["a", "b"] },
            "items": [{ "sku": "x" }, null],
            "0": "key named zero",
        });
        assert_eq!(lookup_path(&body, "slot_id"), Some(&json!(7)));
        assert_eq!(lookup_path(&body, "patient.name"), Some(&json!("Ada")));
        assert_eq!(lookup_path(&body, "patient.tags.1"), Some(&json!("b")));
        assert_eq!(lookup_path(&body, "items.0.sku"), Some(&json!("x")));
        assert_eq!(lookup_path(&body, "items.1"), Some(&Value::Null));
        assert_eq!(lookup_path(&body, "0"), Some(&json!("key named zero")));
        assert_eq!(lookup_path(&body, "items.2"), None);
        assert_eq!(lookup_path(&body, "items.first"), None);
        assert_eq!(lookup_path(&body, "items.+0"), None);
        assert_eq!(lookup_path(&body, "patient.name.first"), None);
        assert_eq!(lookup_path(&body, "nobody"), None);
        assert_eq!(lookup_path(&json!([10, 20]), "1"), Some(&json!(20)));
    }
}
