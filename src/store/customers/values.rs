//! Values told apart by rule alone, with nothing learned: a KeyNo of 32
//! hex digits (whose picture address the view can derive), and a number
//! written the usual way (whose text the view prints back).

/// A KeyNo of 32 lower-case hex digits, as its 16 bytes.
pub(super) fn key_bytes(key_no: &str) -> Option<[u8; 16]> {
    let b = key_no.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Whether a number's text is the usual way of writing it (what the view
/// prints with `printf('%.2f', n)`: `41377.22`, `57.10`): then only the
/// number is stored, and the view prints the text back. Anything else keeps
/// its text beside the number.
///
/// "The usual way" is decided from the text alone, without printing: an
/// optional `-`, at most 13 digits without a leading zero (or a single `0`),
/// a point, two digits; never `-0.00` (a sign on zero is the text's alone).
/// The number read from such a text is within 10^-3 of it, far inside the
/// 0.005 that would change its second decimal, so any correct printer gives
/// it back.
pub(in crate::store) fn plain_number(value: Option<f64>, text: Option<&str>) -> bool {
    let Some(text) = text else { return false };
    let digits = text.as_bytes().strip_prefix(b"-").unwrap_or(text.as_bytes());
    let n = digits.len();
    (4..=16).contains(&n)
        && digits[n - 3] == b'.'
        && digits[..n - 3].iter().chain(&digits[n - 2..]).all(u8::is_ascii_digit)
        && (digits[0] != b'0' || n == 4)
        && text != "-0.00"
        && value.is_some()
        && value == text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::plain_number;
    use crate::qcc::wire::parse_number;

    /// Every text the writer leaves out, SQLite's view prints back exactly
    /// from the number it keeps.
    #[test]
    fn a_number_text_left_out_is_exactly_what_the_view_prints_from_its_number() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut texts: Vec<String> = [
            "0.00",
            "-0.00",
            "0.01",
            "-0.01",
            "41377.22",
            "45349.90",
            "57.10",
            "100.00",
            "9999999999999.99",
            "-9999999999999.99",
            "10000000000000.00",
            "0.005",
            "12.5",
            "12.50%",
            "1,234.50",
            " 12.50",
            "+12.50",
            "007.50",
            "未披露",
            "-",
            "1e3",
            "0.125",
            "99.995",
            "2.675",
            "1.005",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = fastrand::Rng::with_seed(20261202);
        for _ in 0..20_000 {
            let digits = rng.usize(1..=13);
            let int: String =
                (0..digits).map(|i| char::from(b'0' + rng.u8(if i == 0 { 1..10 } else { 0..10 }))).collect();
            let sign = if rng.bool() { "-" } else { "" };
            texts.push(format!("{sign}{int}.{:02}", rng.u8(0..100)));
        }
        let mut left_out = 0;
        for text in texts {
            let value = parse_number(&text);
            if !plain_number(value, Some(&text)) {
                continue;
            }
            left_out += 1;
            let printed: String = conn.query_row("SELECT printf('%.2f', ?1)", [value.unwrap()], |r| r.get(0)).unwrap();
            assert_eq!(printed, text, "the view prints back what was left out");
        }
        assert!(left_out > 19_000, "{left_out}");
        for kept in ["-0.00", "12.5", "10000000000000.00", "未披露", "1,234.50", "007.50", "+1.00", "1.5e2"] {
            assert!(!plain_number(parse_number(kept), Some(kept)), "{kept} is stored");
        }
        // A number that is not the text's (never from an answer) keeps the text.
        assert!(!plain_number(Some(2.0), Some("1.00")));
    }
}
