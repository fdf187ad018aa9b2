//! A statement's parameters from a buffered request: where each comes from
//! (`params` in the config), and how a JSON value becomes a value of the
//! type the statement declared.
//!
//! JSON null is SQL NULL for every type. Numbers and other JSON into text
//! give their JSON text; a string into a number is parsed when it is a plain
//! number. Anything else that does not fit is a [`ParamProblem`]: the
//! request is refused (422), for good.

use std::error::Error as StdError;

use anteroom_store::{ParamSource, lookup_path};
use bytes::BytesMut;
use serde_json::{Value, json};
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};

/// The parameter types a JSON value converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParamKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// text, varchar, bpchar, name and enums: all take UTF-8 text.
    Text,
    /// json and jsonb.
    Json,
    Uuid,
}

impl ParamKind {
    pub(super) fn of(ty: &Type) -> Option<ParamKind> {
        match ty.kind() {
            Kind::Domain(base) => return ParamKind::of(base),
            Kind::Enum(_) => return Some(ParamKind::Text),
            _ => {}
        }
        Some(match *ty {
            Type::BOOL => ParamKind::Bool,
            Type::INT2 => ParamKind::Int2,
            Type::INT4 => ParamKind::Int4,
            Type::INT8 => ParamKind::Int8,
            Type::FLOAT4 => ParamKind::Float4,
            Type::FLOAT8 => ParamKind::Float8,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => ParamKind::Text,
            Type::JSON | Type::JSONB => ParamKind::Json,
            Type::UUID => ParamKind::Uuid,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ParamKind::Bool => "a boolean",
            ParamKind::Int2 => "a smallint",
            ParamKind::Int4 => "an integer",
            ParamKind::Int8 => "a bigint",
            ParamKind::Float4 | ParamKind::Float8 => "a number",
            ParamKind::Text => "text",
            ParamKind::Json => "JSON",
            ParamKind::Uuid => "a UUID",
        }
    }
}

/// A request whose body cannot give a parameter: answered 422, for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParamProblem {
    /// 1-based `$n`; `None` when the body as a whole is unusable.
    pub(super) position: Option<usize>,
    pub(super) param: String,
    pub(super) problem: String,
}

impl ParamProblem {
    /// The 422 body: `{"error":..,"param":..,"position":..}`.
    pub(super) fn body(&self) -> String {
        let error = match self.position {
            Some(position) => format!("parameter ${position} ({}): {}", self.param, self.problem),
            None => format!("{} (needed for {})", self.problem, self.param),
        };
        json!({ "error": error, "param": self.param, "position": self.position }).to_string()
    }
}

/// Why a JSON value does not fit a parameter's type: the problem of a
/// [`ParamProblem`], in the words of the 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ValueProblem {
    #[error("expected {expected}, got {got}")]
    Expected { expected: &'static str, got: String },
    #[error("{value} is out of range for {kind}")]
    OutOfRange { value: String, kind: &'static str },
}

/// A parameter value, encoded for the type the statement declared.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SqlParam {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Text(String),
    Json(Value),
    Uuid([u8; 16]),
}

pub(super) fn extract(
    sources: &[ParamSource],
    kinds: &[ParamKind],
    receipt: &str,
    idempotency_key: &str,
    body: &[u8],
) -> Result<Vec<SqlParam>, ParamProblem> {
    let body = match sources.iter().find(|source| source.reads_body()) {
        None => Value::Null,
        Some(reader) => serde_json::from_slice(body).map_err(|error| ParamProblem {
            position: None,
            param: reader.name().to_owned(),
            problem: format!("the body is not JSON ({error})"),
        })?,
    };
    let mut params = Vec::with_capacity(sources.len());
    for (index, (source, kind)) in sources.iter().zip(kinds).enumerate() {
        let problem = |problem: String| ParamProblem {
            position: Some(index + 1),
            param: source.name().to_owned(),
            problem,
        };
        let owned;
        let value = match source {
            ParamSource::IdempotencyKey => {
                owned = Value::from(idempotency_key);
                &owned
            }
            ParamSource::Receipt => {
                owned = Value::from(receipt);
                &owned
            }
            ParamSource::Body => &body,
            ParamSource::Path(path) => lookup_path(&body, path)
                .ok_or_else(|| problem(format!("the body has no {path:?}")))?,
        };
        params.push(convert(value, *kind).map_err(|error| problem(error.to_string()))?);
    }
    Ok(params)
}

/// `value` as a parameter of `kind`. JSON null is SQL NULL; numbers and
/// other JSON into text give their JSON text; a string into a number is
/// parsed when it is a plain number.
fn convert(value: &Value, kind: ParamKind) -> Result<SqlParam, ValueProblem> {
    if value.is_null() {
        return Ok(SqlParam::Null);
    }
    let wrong = || ValueProblem::Expected {
        expected: kind.name(),
        got: describe_json(value),
    };
    let out_of_range = || ValueProblem::OutOfRange {
        value: value.to_string(),
        kind: kind.name(),
    };
    Ok(match kind {
        ParamKind::Bool => SqlParam::Bool(value.as_bool().ok_or_else(wrong)?),
        ParamKind::Int2 => {
            let integer = integer(value).ok_or_else(wrong)?;
            SqlParam::Int2(i16::try_from(integer).map_err(|_| out_of_range())?)
        }
        ParamKind::Int4 => {
            let integer = integer(value).ok_or_else(wrong)?;
            SqlParam::Int4(i32::try_from(integer).map_err(|_| out_of_range())?)
        }
        ParamKind::Int8 => {
            let integer = integer(value).ok_or_else(wrong)?;
            SqlParam::Int8(i64::try_from(integer).map_err(|_| out_of_range())?)
        }
        ParamKind::Float4 => {
            let number = float(value).ok_or_else(wrong)?;
            let narrowed = number as f32;
            if !narrowed.is_finite() {
                return Err(out_of_range());
            }
            SqlParam::Float4(narrowed)
        }
        ParamKind::Float8 => SqlParam::Float8(float(value).ok_or_else(wrong)?),
        ParamKind::Text => SqlParam::Text(match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }),
        ParamKind::Json => SqlParam::Json(value.clone()),
        ParamKind::Uuid => SqlParam::Uuid(value.as_str().and_then(parse_uuid).ok_or_else(wrong)?),
    })
}

/// An integral JSON number, or a string of an optional `-` and digits.
fn integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from)),
        Value::String(text) => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        }
        _ => None,
    }
}

/// A JSON number, or a string holding a plain finite decimal number.
fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => {
            let plain = !text.is_empty()
                && text.bytes().all(|byte| {
                    byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E')
                });
            let number: f64 = text.parse().ok().filter(|_| plain)?;
            number.is_finite().then_some(number)
        }
        _ => None,
    }
}

fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) if text.chars().count() <= 40 => format!("the string {text:?}"),
        Value::String(_) => "a long string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// `8-4-4-4-12` hex digits (or 32 in a row), optionally in braces.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or(text);
    let hex: Vec<u8> = if text.len() == 36 {
        let dashes_in_place = text
            .char_indices()
            .all(|(index, char)| matches!(index, 8 | 13 | 18 | 23) == (char == '-'));
        if !dashes_in_place {
            return None;
        }
        text.bytes().filter(|&byte| byte != b'-').collect()
    } else {
        text.bytes().collect()
    };
    if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut bytes = [0; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(bytes)
}

impl ToSql for SqlParam {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        // A domain is sent as its base type.
        let ty = base_type(ty);
        match self {
            SqlParam::Null => Ok(IsNull::Yes),
            SqlParam::Bool(value) => value.to_sql(ty, out),
            SqlParam::Int2(value) => value.to_sql(ty, out),
            SqlParam::Int4(value) => value.to_sql(ty, out),
            SqlParam::Int8(value) => value.to_sql(ty, out),
            SqlParam::Float4(value) => value.to_sql(ty, out),
            SqlParam::Float8(value) => value.to_sql(ty, out),
            // The binary form of text, varchar, bpchar, name and enum labels.
            SqlParam::Text(value) => {
                out.extend_from_slice(value.as_bytes());
                Ok(IsNull::No)
            }
            SqlParam::Json(value) => value.to_sql(ty, out),
            SqlParam::Uuid(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    /// The kind was chosen from the statement's declared types.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(base) => base_type(base),
        _ => ty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(params: &[&str]) -> Vec<ParamSource> {
        params
            .iter()
            .map(|param| ParamSource::parse(param))
            .collect()
    }

    #[test]
    fn null_is_sql_null_for_every_kind() {
        for kind in [
            ParamKind::Bool,
            ParamKind::Int2,
            ParamKind::Int4,
            ParamKind::Int8,
            ParamKind::Float4,
            ParamKind::Float8,
            ParamKind::Text,
            ParamKind::Json,
            ParamKind::Uuid,
        ] {
            assert_eq!(convert(&Value::Null, kind), Ok(SqlParam::Null));
        }
    }

    #[test]
    fn integers_come_from_integral_numbers_and_plain_integer_strings() {
        assert_eq!(convert(&json!(42), ParamKind::Int4), Ok(SqlParam::Int4(42)));
        assert_eq!(
            convert(&json!("42"), ParamKind::Int4),
            Ok(SqlParam::Int4(42))
        );
        assert_eq!(
            convert(&json!("-7"), ParamKind::Int2),
            Ok(SqlParam::Int2(-7))
        );
        assert_eq!(
            convert(&json!(9_007_199_254_740_993_i64), ParamKind::Int8),
            Ok(SqlParam::Int8(9_007_199_254_740_993))
        );
        for refused in [
            json!(4.2),
            json!("4.2"),
            json!(" 42"),
            json!("+42"),
            json!("-"),
            json!(""),
            json!("abc"),
            json!(true),
            json!([1]),
        ] {
            let problem = convert(&refused, ParamKind::Int4).unwrap_err().to_string();
            assert!(problem.starts_with("expected an integer, got"), "{problem}");
        }
        assert_eq!(
            convert(&json!(40_000), ParamKind::Int2).map_err(|problem| problem.to_string()),
            Err("40000 is out of range for a smallint".to_owned())
        );
        assert!(convert(&json!("99999999999"), ParamKind::Int4).is_err());
        assert!(convert(&json!(u64::MAX), ParamKind::Int8).is_err());
    }

    #[test]
    fn floats_come_from_numbers_and_plain_number_strings() {
        assert_eq!(
            convert(&json!(1.5), ParamKind::Float8),
            Ok(SqlParam::Float8(1.5))
        );
        assert_eq!(
            convert(&json!(3), ParamKind::Float4),
            Ok(SqlParam::Float4(3.0))
        );
        assert_eq!(
            convert(&json!("-2.5e1"), ParamKind::Float8),
            Ok(SqlParam::Float8(-25.0))
        );
        assert!(convert(&json!("NaN"), ParamKind::Float8).is_err());
        assert!(convert(&json!("inf"), ParamKind::Float8).is_err());
        assert!(convert(&json!("1e999"), ParamKind::Float8).is_err());
        assert!(convert(&json!(1e300), ParamKind::Float4).is_err());
        assert!(convert(&json!(false), ParamKind::Float8).is_err());
    }

    #[test]
    fn text_takes_strings_as_they_are_and_other_values_as_json_text() {
        assert_eq!(
            convert(&json!("Ada \"A\""), ParamKind::Text),
            Ok(SqlParam::Text("Ada \"A\"".into()))
        );
        assert_eq!(
            convert(&json!(12.5), ParamKind::Text),
            Ok(SqlParam::Text("12.5".into()))
        );
        assert_eq!(
            convert(&json!(7), ParamKind::Text),
            Ok(SqlParam::Text("7".into()))
        );
        assert_eq!(
            convert(&json!(true), ParamKind::Text),
            Ok(SqlParam::Text("true".into()))
        );
        assert_eq!(
            convert(&json!({"a": [1]}), ParamKind::Text),
            Ok(SqlParam::Text("{\"a\":[1]}".into()))
        );
    }

    #[test]
    fn booleans_json_and_uuids() {
        assert_eq!(
            convert(&json!(true), ParamKind::Bool),
            Ok(SqlParam::Bool(true))
        );
        assert_eq!(
            convert(&json!("true"), ParamKind::Bool).map_err(|problem| problem.to_string()),
            Err("expected a boolean, got the string \"true\"".to_owned())
        );
        assert_eq!(
            convert(&json!("x"), ParamKind::Json),
            Ok(SqlParam::Json(json!("x")))
        );
        let expected = [
            0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f,
            0xe0, 0xc8,
        ];
        for text in [
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
            "67e5504410b1426f9247bb680e5fe0c8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        ] {
            assert_eq!(
                convert(&json!(text), ParamKind::Uuid),
                Ok(SqlParam::Uuid(expected)),
                "{text}"
            );
        }
        for bad in [
            "67e55044-10b1-426f-9247-bb680e5fe0c",
            "67e5504-410b1-426f-9247-bb680e5fe0c8",
            "zze55044-10b1-426f-9247-bb680e5fe0c8",
            "+7e5504410b1426f9247bb680e5fe0c8",
        ] {
            assert!(convert(&json!(bad), ParamKind::Uuid).is_err(), "{bad}");
        }
    }

    #[test]
    fn extract_reads_specials_and_paths_in_order() {
        let body = br#"{"slot_id": "3", "patient": {"name": "Ada"}}"#;
        let extracted = extract(
            &sources(&[
                "slot_id",
                "patient.name",
                "$idempotency_key",
                "$receipt",
                "$body",
            ]),
            &[
                ParamKind::Int4,
                ParamKind::Text,
                ParamKind::Text,
                ParamKind::Text,
                ParamKind::Json,
            ],
            "receipt-1",
            "key-1",
            body,
        );
        assert_eq!(
            extracted,
            Ok(vec![
                SqlParam::Int4(3),
                SqlParam::Text("Ada".into()),
                SqlParam::Text("key-1".into()),
                SqlParam::Text("receipt-1".into()),
                SqlParam::Json(json!({"slot_id": "3", "patient": {"name": "Ada"}})),
            ])
        );
    }

    #[test]
    fn extract_names_the_parameter_it_cannot_give() {
        let kinds = [ParamKind::Int4, ParamKind::Text];
        let missing = extract(
            &sources(&["slot_id", "patient.name"]),
            &kinds,
            "r",
            "k",
            br#"{"slot_id": 1}"#,
        )
        .unwrap_err();
        assert_eq!(missing.position, Some(2));
        assert_eq!(missing.param, "patient.name");
        let body: Value = serde_json::from_str(&missing.body()).unwrap();
        assert_eq!(
            body["error"],
            "parameter $2 (patient.name): the body has no \"patient.name\""
        );
        assert_eq!(body["param"], "patient.name");
        assert_eq!(body["position"], 2);

        let wrong_type = extract(
            &sources(&["slot_id", "patient.name"]),
            &kinds,
            "r",
            "k",
            br#"{"slot_id": "three"}"#,
        )
        .unwrap_err();
        assert_eq!(wrong_type.position, Some(1));
        assert_eq!(
            wrong_type.problem,
            "expected an integer, got the string \"three\""
        );

        let not_json = extract(
            &sources(&["$receipt", "$body"]),
            &[ParamKind::Text, ParamKind::Json],
            "r",
            "k",
            b"slot=1",
        )
        .unwrap_err();
        assert_eq!(not_json.position, None);
        assert_eq!(not_json.param, "$body");
        assert!(
            not_json.body().contains("the body is not JSON"),
            "{}",
            not_json.body()
        );
    }

    #[test]
    fn a_body_no_parameter_reads_is_not_parsed() {
        let extracted = extract(
            &sources(&["$idempotency_key"]),
            &[ParamKind::Text],
            "r",
            "k",
            b"\xff not json",
        );
        assert_eq!(extracted, Ok(vec![SqlParam::Text("k".into())]));
    }

    #[test]
    fn parameter_kinds_follow_domains_and_enums() {
        assert_eq!(ParamKind::of(&Type::INT4), Some(ParamKind::Int4));
        assert_eq!(ParamKind::of(&Type::VARCHAR), Some(ParamKind::Text));
        assert_eq!(ParamKind::of(&Type::JSONB), Some(ParamKind::Json));
        assert_eq!(ParamKind::of(&Type::NUMERIC), None);
        assert_eq!(ParamKind::of(&Type::TIMESTAMPTZ), None);
        let domain = Type::new(
            "seats".into(),
            90_001,
            Kind::Domain(Type::INT2),
            "public".into(),
        );
        assert_eq!(ParamKind::of(&domain), Some(ParamKind::Int2));
        let label = Type::new(
            "mood".into(),
            90_002,
            Kind::Enum(vec!["ok".into()]),
            "public".into(),
        );
        assert_eq!(ParamKind::of(&label), Some(ParamKind::Text));
    }
}
