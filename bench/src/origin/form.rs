//! `application/x-www-form-urlencoded` bodies, as the booking form posts them.

/// The `name` and `slot` fields of a form body, decoded.
pub(super) fn form_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let (mut name, mut slot) = (None, None);
    for pair in body.split(|byte| *byte == b'&') {
        let mut halves = pair.splitn(2, |byte| *byte == b'=');
        let key = percent_decode(halves.next().unwrap_or_default());
        let value = percent_decode(halves.next().unwrap_or_default());
        match key.as_str() {
            "name" => name = Some(value),
            "slot" => slot = Some(value),
            _ => {}
        }
    }
    (name, slot)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(input: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'+' => bytes.push(b' '),
            b'%' if index + 2 < input.len() => {
                match (hex_value(input[index + 1]), hex_value(input[index + 2])) {
                    (Some(high), Some(low)) => {
                        bytes.push(high << 4 | low);
                        index += 2;
                    }
                    _ => bytes.push(b'%'),
                }
            }
            byte => bytes.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(percent_decode(b"a+b%20c%2"), "a b c%2");
        assert_eq!(percent_decode(b"%C3%A0%zz%"), "à%zz%");
        assert_eq!(
            form_fields(b"slot=x&name=&other=1"),
            (Some(String::new()), Some("x".to_owned()))
        );
    }
}
