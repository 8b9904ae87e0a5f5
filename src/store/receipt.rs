//! Receipts: every 200 body is kept compressed in `raw_pages`, the proof of
//! what was paid for and what `rebuild` re-derives rows from. Both
//! directions live here.
//!
//! Three kinds are read, told apart by their first bytes:
//! * zlib (files written before version 9 of the schema);
//! * a zstd frame without a dictionary (`raw_pages.dict_id` NULL): a new
//!   file's first pages, before it holds enough to learn from;
//! * a zstd frame against one of the file's own dictionaries
//!   (`receipt_dictionaries`, named by `raw_pages.dict_id`), trained on a
//!   sample of the file's pages: the vocabulary every page repeats (field
//!   names, `【有效请求】`, `年报`, address prefixes) is paid once, in the
//!   dictionary, instead of on every page.
//!
//! Every zstd frame carries its content size and a checksum, so a damaged
//! receipt is refused rather than read wrong.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

/// Pages a file must hold (or a run must have seen) before a dictionary is
/// trained on them: fewer teach a dictionary too little to beat plain zstd.
pub const TRAIN_AFTER_PAGES: usize = 256;

/// The largest sample a dictionary is trained on (pages).
pub const SAMPLE_PAGES: usize = 1_000;

/// The dictionary's size: the measured knee (BENCHMARKS.md, "Receipts").
pub const DICTIONARY_BYTES: usize = 32 << 10;

/// The zstd level receipts are written at: with a dictionary, level 3 is
/// within 1–2 bytes a row of level 9 at a fifth of the CPU (BENCHMARKS.md).
pub const LEVEL: i32 = 3;

/// A receipt's body is refused above this size once decompressed (a page of
/// 50 rows is ~20 KB): a damaged header must not make us allocate gigabytes.
const LARGEST_BODY: u64 = 64 << 20;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A dictionary of this file's own pages.
#[derive(Debug)]
pub struct Dictionary {
    /// `receipt_dictionaries.dict_id`.
    pub id: i64,
    pub bytes: Vec<u8>,
    /// What it was trained on: pages, and their bytes uncompressed.
    pub pages: usize,
    pub sample_bytes: usize,
    /// Unique in this process: two files' dictionaries share ids, and a
    /// thread's compressor must never use one file's for the other's.
    serial: u64,
}

/// The next [`Dictionary::serial`].
fn serial() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Dictionary {
    /// A dictionary as stored (`receipt_dictionaries`).
    pub fn new(id: i64, bytes: Vec<u8>, pages: usize, sample_bytes: usize) -> Dictionary {
        Dictionary { id, bytes, pages, sample_bytes, serial: serial() }
    }

    /// Train a dictionary on sample bodies (as received). `None` when the
    /// sample is too small or too uniform for zstd to learn from; receipts
    /// then stay plain zstd, which is always correct.
    pub fn train(id: i64, samples: &[Vec<u8>]) -> Option<Dictionary> {
        let sample_bytes: usize = samples.iter().map(Vec::len).sum();
        // zstd wants several samples and more bytes than the dictionary.
        if samples.len() < 8 || sample_bytes < DICTIONARY_BYTES {
            return None;
        }
        match zstd::dict::from_samples(samples, DICTIONARY_BYTES) {
            Ok(bytes) => Some(Dictionary::new(id, bytes, samples.len(), sample_bytes)),
            Err(e) => {
                tracing::warn!(error = %e, pages = samples.len(), "Could not train a receipt dictionary; receipts stay plain zstd.");
                None
            }
        }
    }
}

thread_local! {
    /// One compressor per thread for plain frames and one for the current
    /// dictionary, kept between pages: a fresh context allocates and, with a
    /// dictionary, digests it again.
    static PLAIN: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static WITH_DICT: std::cell::RefCell<Option<(u64, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
}

fn compressor(dictionary: Option<&[u8]>) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = match dictionary {
        Some(d) => zstd::bulk::Compressor::with_dictionary(LEVEL, d)?,
        None => zstd::bulk::Compressor::new(LEVEL)?,
    };
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
    Ok(c)
}

/// Compress a response body, against `dictionary` when there is one.
pub fn compress(body: &[u8], dictionary: Option<&Dictionary>) -> Option<Vec<u8>> {
    let Some(dict) = dictionary else {
        return PLAIN.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = Some(compressor(None).ok()?);
            }
            slot.as_mut()?.compress(body).ok()
        });
    };
    WITH_DICT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|(serial, _)| *serial != dict.serial) {
            *slot = Some((dict.serial, compressor(Some(&dict.bytes)).ok()?));
        }
        slot.as_mut()?.1.compress(body).ok()
    })
}

/// Reads every kind of receipt a file holds. Made from the file's
/// dictionaries (`store::read::receipt_dictionaries`).
pub struct Reader {
    dictionaries: HashMap<i64, Vec<u8>>,
    /// Decompressors made so far, by dictionary (None: plain).
    made: HashMap<Option<i64>, zstd::bulk::Decompressor<'static>>,
}

impl Reader {
    pub fn new(dictionaries: impl IntoIterator<Item = (i64, Vec<u8>)>) -> Reader {
        Reader { dictionaries: dictionaries.into_iter().collect(), made: HashMap::new() }
    }

    /// The body as received; `None` if the receipt is unreadable (damaged,
    /// or it names a dictionary the file does not hold).
    pub fn read(&mut self, stored: &[u8], dict_id: Option<i64>) -> Option<Vec<u8>> {
        if !stored.starts_with(&ZSTD_MAGIC) {
            // zlib: only ever written without a dictionary.
            return if dict_id.is_none() { inflate(stored) } else { None };
        }
        let size = zstd::zstd_safe::get_frame_content_size(stored).ok()??;
        if size > LARGEST_BODY {
            return None;
        }
        if !self.made.contains_key(&dict_id) {
            let d = match dict_id {
                Some(id) => zstd::bulk::Decompressor::with_dictionary(self.dictionaries.get(&id)?).ok()?,
                None => zstd::bulk::Decompressor::new().ok()?,
            };
            self.made.insert(dict_id, d);
        }
        let body = self.made.get_mut(&dict_id)?.decompress(stored, size as usize).ok()?;
        (body.len() as u64 == size).then_some(body)
    }
}

/// A zlib receipt (schema versions before 9).
fn inflate(stored: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    flate2::read::ZlibDecoder::new(stored).take(LARGEST_BODY + 1).read_to_end(&mut body).ok()?;
    (body.len() as u64 <= LARGEST_BODY).then_some(body)
}

/// The dictionary receipts are compressed with, shared by the workers, and
/// the sample it is learned from while the file has none.
pub struct Sealer {
    current: std::sync::RwLock<Option<Arc<Dictionary>>>,
    sample: std::sync::Mutex<Sampling>,
}

/// A receipt, compressed.
pub struct Sealed {
    pub body: Vec<u8>,
    /// The dictionary it needs.
    pub dict_id: Option<i64>,
    /// The bodies to train the file's first dictionary on, once.
    pub sample: Option<Sample>,
}

/// Bodies as received, for a dictionary that will take `id`.
pub struct Sample {
    pub id: i64,
    pub bodies: Vec<Vec<u8>>,
}

enum Sampling {
    /// Bodies kept to train on; the dictionary will take this id.
    Collecting { id: i64, bodies: Vec<Vec<u8>> },
    /// Training, trained, or not to be trained in this run.
    Over,
}

impl Sealer {
    /// With the file's newest dictionary, or (without one) learning one
    /// with id `next_id` from the run's first pages.
    pub fn new(current: Option<Arc<Dictionary>>, next_id: i64) -> Sealer {
        let sample = match current {
            Some(_) => Sampling::Over,
            None => Sampling::Collecting { id: next_id, bodies: Vec::new() },
        };
        Sealer { current: std::sync::RwLock::new(current), sample: std::sync::Mutex::new(sample) }
    }

    /// The compressed receipt and the dictionary it needs; with the sample
    /// to train on when this body completed it (the caller trains, stores the
    /// dictionary, then [`Sealer::adopt`]s it).
    pub fn seal(&self, body: &[u8]) -> Option<Sealed> {
        let current = self.current.read().ok()?.clone();
        let sample = if current.is_none() { self.keep(body) } else { None };
        let stored = compress(body, current.as_deref())?;
        Some(Sealed { body: stored, dict_id: current.map(|d| d.id), sample })
    }

    fn keep(&self, body: &[u8]) -> Option<Sample> {
        let mut sample = self.sample.lock().ok()?;
        let Sampling::Collecting { id, bodies } = &mut *sample else { return None };
        bodies.push(body.to_vec());
        if bodies.len() < TRAIN_AFTER_PAGES {
            return None;
        }
        let taken = Sample { id: *id, bodies: std::mem::take(bodies) };
        *sample = Sampling::Over;
        Some(taken)
    }

    /// Compress later receipts with `dictionary` (once it is on its way
    /// into the file: receipts that need it are stored after it).
    pub fn adopt(&self, dictionary: Arc<Dictionary>) {
        if let Ok(mut current) = self.current.write() {
            *current = Some(dictionary);
        }
    }

    /// The dictionary in use, if any.
    pub fn current(&self) -> Option<Arc<Dictionary>> {
        self.current.read().ok()?.clone()
    }
}

#[cfg(test)]
mod tests;
