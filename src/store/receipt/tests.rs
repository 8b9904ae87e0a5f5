use std::io::Write;
use std::sync::Arc;

use super::*;

/// Bodies shaped like pages: the same vocabulary, different values.
fn pages(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let rows: Vec<String> = (0..20)
                .map(|r| {
                    format!(
                        r#"{{"KeyNo":"{:032x}","Name":"公司{i}-{r}","SalesAmount":"{}.{:02}","Source":"年报","Relationship":"关联方"}}"#,
                        (i * 7919 + r) as u128 * 0x9E37_79B9_7F4A_7C15,
                        i * 31 + r,
                        r
                    )
                })
                .collect();
            format!(r#"{{"Status":"200","Message":"【有效请求】","OrderNumber":"N{i}","Result":[{}]}}"#, rows.join(",")).into_bytes()
        })
        .collect()
}

fn zlib(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

#[test]
fn zlib_plain_zstd_and_dictionary_receipts_all_read_back_exactly() {
    let bodies = pages(300);
    let dict = Dictionary::train(7, &bodies[..200]).expect("trained");
    let mut reader = Reader::new([(7, dict.bytes.clone())]);
    for body in bodies.iter().chain([&Vec::new(), &"中文".repeat(5000).into_bytes()]) {
        assert_eq!(reader.read(&zlib(body), None).as_ref(), Some(body));
        assert_eq!(reader.read(&compress(body, None).unwrap(), None).as_ref(), Some(body));
        assert_eq!(reader.read(&compress(body, Some(&dict)).unwrap(), Some(7)).as_ref(), Some(body));
    }
}

#[test]
fn a_dictionary_of_the_files_pages_makes_later_receipts_smaller_than_plain_zstd() {
    let bodies = pages(400);
    let dict = Dictionary::train(1, &bodies[..256]).unwrap();
    let later = &bodies[256..];
    let plain: usize = later.iter().map(|b| compress(b, None).unwrap().len()).sum();
    let with: usize = later.iter().map(|b| compress(b, Some(&dict)).unwrap().len()).sum();
    let zlib: usize = later.iter().map(|b| zlib(b).len()).sum();
    assert!(with < plain && plain < zlib, "with dictionary {with}, plain {plain}, zlib {zlib}");
}

#[test]
fn a_damaged_receipt_or_one_naming_a_missing_dictionary_is_refused_not_read_wrong() {
    let bodies = pages(40);
    let dict = Dictionary::train(3, &bodies).unwrap();
    let stored = compress(&bodies[0], Some(&dict)).unwrap();
    // The file has no dictionary 3, or another one under that id.
    assert_eq!(Reader::new([]).read(&stored, Some(3)), None);
    let other = Dictionary::train(3, &pages(60)[30..]).unwrap();
    assert_eq!(Reader::new([(3, other.bytes)]).read(&stored, Some(3)), None);
    // A flipped byte in the middle, a cut frame, a zlib receipt said to need a dictionary.
    let mut flipped = stored.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let mut reader = Reader::new([(3, dict.bytes.clone())]);
    assert_eq!(reader.read(&flipped, Some(3)), None);
    assert_eq!(reader.read(&stored[..stored.len() - 3], Some(3)), None);
    assert_eq!(reader.read(&zlib(&bodies[0]), Some(3)), None);
    assert_eq!(reader.read(&stored, Some(3)).as_ref(), Some(&bodies[0]));
}

#[test]
fn the_sealer_hands_over_one_sample_after_enough_pages_then_uses_the_adopted_dictionary() {
    let sealer = Sealer::new(None, 5);
    let bodies = pages(TRAIN_AFTER_PAGES + 10);
    let mut sample = None;
    for (i, body) in bodies.iter().enumerate() {
        let sealed = sealer.seal(body).unwrap();
        assert_eq!(sealed.dict_id, None, "no dictionary before one is adopted");
        assert_eq!(Reader::new([]).read(&sealed.body, None).as_ref(), Some(body));
        if let Some(t) = sealed.sample {
            assert!(sample.is_none(), "the sample is handed over once");
            assert_eq!(i + 1, TRAIN_AFTER_PAGES);
            sample = Some(t);
        }
    }
    let sample = sample.expect("handed over");
    assert_eq!((sample.id, sample.bodies.len()), (5, TRAIN_AFTER_PAGES));
    let dict = Arc::new(Dictionary::train(sample.id, &sample.bodies).unwrap());
    sealer.adopt(dict.clone());
    let sealed = sealer.seal(&bodies[0]).unwrap();
    assert_eq!((sealed.dict_id, sealed.sample.is_none()), (Some(5), true));
    assert_eq!(Reader::new([(5, dict.bytes.clone())]).read(&sealed.body, Some(5)).as_ref(), Some(&bodies[0]));
    // A file that already has a dictionary samples nothing.
    let known = Sealer::new(Some(dict), 6);
    assert!(bodies.iter().all(|b| known.seal(b).unwrap().sample.is_none()));
}

#[test]
fn too_small_a_sample_trains_no_dictionary() {
    assert!(Dictionary::train(1, &pages(3)).is_none());
    assert!(Dictionary::train(1, &vec![b"{}".to_vec(); 100]).is_none());
}

#[test]
fn two_files_dictionaries_under_the_same_id_are_never_confused_by_a_threads_compressor() {
    // One process, two files, each with its dictionary 1 (the bench, the
    // tests, a long-lived caller): each receipt reads back with its own file's.
    let a = Dictionary::train(1, &pages(100)).unwrap();
    let other: Vec<Vec<u8>> = pages(100).into_iter().map(|p| [b"[\"x\",".as_slice(), &p, b"]"].concat()).collect();
    let b = Dictionary::train(1, &other).unwrap();
    assert_ne!(a.bytes, b.bytes);
    let body = &other[7];
    let _warm = compress(body, Some(&a)).unwrap();
    let stored = compress(body, Some(&b)).unwrap();
    assert_eq!(Reader::new([(1, b.bytes.clone())]).read(&stored, Some(1)).as_ref(), Some(body));
    assert_eq!(Reader::new([(1, a.bytes.clone())]).read(&stored, Some(1)), None, "the frame names its dictionary");
}
