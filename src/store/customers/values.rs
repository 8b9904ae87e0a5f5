//! Values stored in fewer bytes by rule alone, with nothing learned: a
//! KeyNo of 32 hex digits as its 16 bytes, a number written the usual way as
//! its hundredths, `fetched_at` as milliseconds since the company's first
//! stored row (migrations 0006, 0010 and 0011; the `customers` view decodes
//! each exactly).

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, OptionalExtension, Transaction};

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

/// `now` as milliseconds since 1970 when the view spells them back exactly
/// (`2026-11-30T20:40:52.938Z`).
fn millis(now: &str) -> Option<i64> {
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
    chrono::NaiveDateTime::parse_from_str(now, FORMAT)
        .ok()
        .map(|t| t.and_utc())
        .filter(|t| (1970..=9999).contains(&chrono::Datelike::year(t)) && t.format(FORMAT).to_string() == now)
        .map(|t| t.timestamp_millis())
}

/// `fetched_at` as a company's rows store it: milliseconds since the
/// company's `fetched_base` (set to this time when its first row is
/// stored), else the text.
pub(super) fn stored_time<'a>(tx: &Transaction<'_>, company: i64, now: &'a str) -> rusqlite::Result<ToSqlOutput<'a>> {
    let Some(ms) = millis(now) else { return Ok(ToSqlOutput::Borrowed(ValueRef::Text(now.as_bytes()))) };
    let base: Option<i64> = tx
        .prepare_cached("SELECT fetched_base FROM companies WHERE company_id = ?1")?
        .query_row([company], |r| r.get(0))
        .optional()?
        .flatten();
    let base = match base {
        Some(base) => base,
        None => {
            tx.prepare_cached("UPDATE companies SET fetched_base = ?2 WHERE company_id = ?1")?
                .execute(params![company, ms])?;
            ms
        }
    };
    Ok(ToSqlOutput::Owned((ms - base).into()))
}

/// A number and its text as stored. A text written the usual way (what
/// the view prints with `printf('%.2f', n)`: `41377.22`, `57.10`) is left
/// out and the number kept as its integer count of hundredths (4137722),
/// which the view divides by 100.0: exactly the number read from the text,
/// both being the double nearest to the same decimal. Anything else keeps
/// its text, and the number as a REAL.
///
/// "The usual way" is decided from the text alone, without printing: an
/// optional `-`, at most 13 digits without a leading zero (or a single `0`),
/// a point, two digits; never `-0.00` (a sign on zero is the text's alone).
/// The number read from such a text is within 10^-3 of it, far inside the
/// 0.005 that would change its second decimal, so any correct printer gives
/// it back.
pub(super) fn stored_number(value: Option<f64>, text: &Option<String>) -> (ToSqlOutput<'static>, Option<&str>) {
    match (hundredths(value, text.as_deref()), value) {
        (Some(h), _) => (ToSqlOutput::Owned(h.into()), None),
        (None, Some(v)) => (ToSqlOutput::Owned(v.into()), text.as_deref()),
        (None, None) => (ToSqlOutput::Owned(Value::Null), text.as_deref()),
    }
}

/// The text's number in hundredths, when the text is written the usual way
/// and `value` is its number.
/// A number's text is what `printf('%.2f', number)` prints (see [`stored_number`]).
pub(in crate::store) fn plain_number(value: Option<f64>, text: Option<&str>) -> bool {
    hundredths(value, text).is_some()
}

fn hundredths(value: Option<f64>, text: Option<&str>) -> Option<i64> {
    let text = text?;
    let negative = text.starts_with('-');
    let digits = text.as_bytes().strip_prefix(b"-").unwrap_or(text.as_bytes());
    let n = digits.len();
    let canonical = (4..=16).contains(&n)
        && digits[n - 3] == b'.'
        && digits[..n - 3].iter().chain(&digits[n - 2..]).all(u8::is_ascii_digit)
        && (digits[0] != b'0' || n == 4)
        && text != "-0.00"
        && value.is_some()
        && value == text.parse::<f64>().ok();
    if !canonical {
        return None;
    }
    let h = digits.iter().filter(|c| c.is_ascii_digit()).fold(0i64, |h, c| h * 10 + i64::from(c - b'0'));
    Some(if negative { -h } else { h })
}

/// An empty blob: "none" where NULL means "derived".
pub(super) const NONE: ToSqlOutput<'static> = ToSqlOutput::Borrowed(ValueRef::Blob(&[]));

#[cfg(test)]
mod tests {
    use super::{hundredths, stored_number};
    use crate::qcc::wire::parse_number;

    /// Every text the writer leaves out, SQLite's view prints back exactly,
    /// from the hundredths it keeps, and divides back to the same number.
    #[test]
    fn a_number_text_left_out_is_exactly_what_the_view_prints_from_its_hundredths() {
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
            let Some(h) = hundredths(value, Some(&text)) else { continue };
            left_out += 1;
            let (number, printed): (f64, String) = conn
                .query_row("SELECT ?1 / 100.0, printf('%.2f', ?1 / 100.0)", [h], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            assert_eq!(number.to_bits(), value.unwrap().to_bits(), "{text}: the view's number is the text's");
            assert_eq!(printed, text, "the view prints back what was left out");
        }
        assert!(left_out > 19_000, "{left_out}");
        assert_eq!(stored_number(Some(1.0), &None).1, None, "no text stays no text");
        for kept in ["-0.00", "12.5", "10000000000000.00", "未披露", "1,234.50", "007.50", "+1.00", "1.5e2"] {
            let t = Some(kept.to_string());
            assert_eq!(stored_number(parse_number(kept), &t).1, Some(kept), "{kept} is stored");
        }
        // A number that is not the text's (never from an answer) keeps the text.
        assert_eq!(stored_number(Some(2.0), &Some("1.00".into())).1, Some("1.00"));
    }
}
