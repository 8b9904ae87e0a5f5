//! Request signing (docs/design.md §1.1): `Token` = uppercase hex MD5 of
//! `key + Timespan + SecretKey`, with one `Timespan` per request.

use md5::{Digest, Md5};

/// The uppercase hex MD5 token for one request.
///
/// The caller computes `timespan` once and sends the same value in the
/// `Timespan` header; a token built from a different second is rejected (107).
pub fn token(key: &str, timespan: &str, secret: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(key.as_bytes());
    hasher.update(timespan.as_bytes());
    hasher.update(secret.as_bytes());
    let digest = hasher.finalize();
    let mut out = String::with_capacity(32);
    for byte in digest {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 0x0f) as usize] as char);
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `now` as the API wants it in `Timespan`: Unix time in whole seconds. The
/// client passes its run's clock, so a test that moves the clock signs with
/// the time it stores.
pub fn timespan(now: chrono::DateTime<chrono::Utc>) -> String {
    now.timestamp().max(0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_matches_fixed_test_vector() {
        // Computed independently: python3 -c "import hashlib;
        // print(hashlib.md5(b'my-app-key1574143032my-secret-key').hexdigest().upper())"
        assert_eq!(token("my-app-key", "1574143032", "my-secret-key"), "1397132C43DCA8C47AA845A21F5B0A38");
    }

    #[test]
    fn the_timespan_is_the_clocks_unix_second() {
        let t = chrono::DateTime::from_timestamp(1_574_143_032, 900_000_000).unwrap();
        assert_eq!(timespan(t), "1574143032");
    }

    #[test]
    fn token_is_32_uppercase_hex_chars() {
        let t = token("k", "1", "s");
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }
}
