//! Result rows as JSON, for the answer recorded when a statement returns
//! rows. tokio-postgres receives values in PostgreSQL's binary format; the
//! common types are decoded here, any other type is `null`.

use std::error::Error as StdError;

use serde_json::Value;
use tokio_postgres::types::{FromSql, Kind, Type};

/// A result column as JSON: the parameter types plus numeric
/// (as a string, to keep its precision), date and time types (ISO 8601 text)
/// and enums; `null` for any other type.
pub(super) struct ColumnValue(pub(super) Value);

impl<'a> FromSql<'a> for ColumnValue {
    /// Never fails: the statement has run, and a value we cannot show is no
    /// reason to undo it. It shows as `null`.
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(ColumnValue(column_json(ty, raw).unwrap_or(Value::Null)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(ColumnValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn column_json(ty: &Type, raw: &[u8]) -> Result<Value, Box<dyn StdError + Sync + Send>> {
    match ty.kind() {
        Kind::Domain(base) => return column_json(base, raw),
        Kind::Enum(_) => return Ok(Value::from(std::str::from_utf8(raw)?)),
        _ => {}
    }
    Ok(match *ty {
        Type::BOOL => Value::from(bool::from_sql(ty, raw)?),
        Type::INT2 => Value::from(i16::from_sql(ty, raw)?),
        Type::INT4 => Value::from(i32::from_sql(ty, raw)?),
        Type::INT8 => Value::from(i64::from_sql(ty, raw)?),
        Type::OID => Value::from(u32::from_sql(ty, raw)?),
        Type::FLOAT4 => Value::from(f32::from_sql(ty, raw)?),
        Type::FLOAT8 => Value::from(f64::from_sql(ty, raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Value::from(std::str::from_utf8(raw)?)
        }
        Type::JSON | Type::JSONB => Value::from_sql(ty, raw)?,
        Type::UUID => Value::from(format_uuid(raw).ok_or("bad uuid")?),
        Type::NUMERIC => Value::from(format_numeric(raw).ok_or("bad numeric")?),
        Type::DATE => Value::from(format_date(i32::from_sql(ty, raw)?)),
        Type::TIMESTAMP => Value::from(format_timestamp(i64::from_sql(ty, raw)?, "")),
        Type::TIMESTAMPTZ => Value::from(format_timestamp(i64::from_sql(ty, raw)?, "Z")),
        _ => Value::Null,
    })
}

fn format_uuid(raw: &[u8]) -> Option<String> {
    if raw.len() != 16 {
        return None;
    }
    let hex: String = raw.iter().map(|byte| format!("{byte:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// PostgreSQL's binary numeric: digit count, weight (of the first base-10000
/// digit), sign, display scale, then the base-10000 digits.
fn format_numeric(raw: &[u8]) -> Option<String> {
    let word = |index: usize| -> Option<u16> {
        let bytes = raw.get(index * 2..index * 2 + 2)?;
        Some(u16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let count = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let scale = usize::from(word(3)?);
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => {}
    }
    let digits: Vec<u16> = (0..count)
        .map(|index| word(4 + index))
        .collect::<Option<_>>()?;
    let digit = |index: i64| -> u16 {
        usize::try_from(index)
            .ok()
            .and_then(|index| digits.get(index).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0).to_string());
        for index in 1..=weight {
            text.push_str(&format!("{:04}", digit(index)));
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut index = weight + 1;
        while fraction.len() < scale {
            fraction.push_str(&format!("{:04}", digit(index)));
            index += 1;
        }
        fraction.truncate(scale);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

/// Days since 2000-01-01 as `YYYY-MM-DD`.
fn format_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        days => {
            let (year, month, day) = civil_from_days(i64::from(days) + DAYS_1970_TO_2000);
            format!("{year:04}-{month:02}-{day:02}")
        }
    }
}

/// Microseconds since 2000-01-01 00:00:00 as `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
fn format_timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        micros => {
            let days = micros.div_euclid(86_400_000_000);
            let of_day = micros.rem_euclid(86_400_000_000);
            let (year, month, day) = civil_from_days(days + DAYS_1970_TO_2000);
            let seconds = of_day / 1_000_000;
            let fraction = of_day % 1_000_000;
            let mut text = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            );
            if fraction != 0 {
                text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
            }
            text.push_str(zone);
            text
        }
    }
}

const DAYS_1970_TO_2000: i64 = 10_957;

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a
/// proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_hyphenated_lowercase_hex() {
        let raw = [
            0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f,
            0xe0, 0xc8,
        ];
        assert_eq!(
            format_uuid(&raw).as_deref(),
            Some("67e55044-10b1-426f-9247-bb680e5fe0c8")
        );
        assert_eq!(format_uuid(&raw[..15]), None);
    }

    fn numeric(count: u16, weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        [count, weight as u16, sign, scale]
            .iter()
            .chain(digits)
            .flat_map(|word| word.to_be_bytes())
            .collect()
    }

    #[test]
    fn numerics_keep_their_digits_and_scale() {
        assert_eq!(
            format_numeric(&numeric(2, 0, 0, 2, &[12, 5000])).as_deref(),
            Some("12.50")
        );
        assert_eq!(
            format_numeric(&numeric(0, 0, 0, 0, &[])).as_deref(),
            Some("0")
        );
        assert_eq!(
            format_numeric(&numeric(0, 0, 0, 3, &[])).as_deref(),
            Some("0.000")
        );
        assert_eq!(
            format_numeric(&numeric(2, -1, 0x4000, 7, &[1, 2340])).as_deref(),
            Some("-0.0001234")
        );
        assert_eq!(
            format_numeric(&numeric(2, 2, 0, 0, &[1, 2])).as_deref(),
            Some("100020000")
        );
        assert_eq!(
            format_numeric(&numeric(0, 0, 0xC000, 0, &[])).as_deref(),
            Some("NaN")
        );
        assert_eq!(format_numeric(&[0, 1]), None);
    }

    #[test]
    fn dates_and_timestamps_are_iso_8601() {
        assert_eq!(format_date(0), "2000-01-01");
        assert_eq!(format_date(-1), "1999-12-31");
        assert_eq!(format_date(60), "2000-03-01");
        assert_eq!(format_date(i32::MAX), "infinity");
        assert_eq!(format_timestamp(0, "Z"), "2000-01-01T00:00:00Z");
        assert_eq!(
            format_timestamp(((24 * 3600 + 3723) * 1_000_000) + 500_000, ""),
            "2000-01-02T01:02:03.5"
        );
        assert_eq!(format_timestamp(-1, "Z"), "1999-12-31T23:59:59.999999Z");
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
