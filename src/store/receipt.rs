//! Receipts: every 200 body is kept zlib-compressed in `raw_pages`, the proof
//! of what was paid for and what `rebuild` re-derives rows from. Both
//! directions live here.

use std::io::Read;

thread_local! {
    /// One zlib compressor per thread, reset between pages: building a fresh
    /// one allocates (and the kernel zero-fills) ~300 KiB every call.
    static COMPRESSOR: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), true));
}

/// zlib-compress a response body.
pub fn compress(body: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(body.len() / 3 + 64);
        loop {
            let consumed = c.total_in() as usize;
            let status = c.compress_vec(&body[consumed..], &mut out, flate2::FlushCompress::Finish).ok()?;
            match status {
                flate2::Status::StreamEnd => return Some(out),
                _ => out.reserve(out.capacity().max(1024)),
            }
        }
    })
}

/// The body as received, from a stored receipt; `None` if it is unreadable.
pub fn decompress(stored: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    flate2::read::ZlibDecoder::new(stored).read_to_end(&mut body).ok()?;
    Some(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn compressed_bodies_round_trip_and_the_compressor_is_reused() {
        for body in [&b""[..], b"{\"Status\":\"200\"}", "中文".repeat(5000).as_bytes()] {
            let z = super::compress(body).unwrap();
            assert_eq!(super::decompress(&z).unwrap(), body);
        }
    }
}
