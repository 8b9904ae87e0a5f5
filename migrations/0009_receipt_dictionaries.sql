-- Version 9: receipts compressed against dictionaries of this file's own pages.
--
-- Each page used to be zlib-compressed alone, so the vocabulary every page
-- repeats (field names, messages, report kinds, address prefixes) was paid
-- again on every page. From this version receipts are zstd frames. Once the
-- file holds a few hundred pages, a dictionary is trained on a sample of
-- them and kept here; later receipts are compressed against it and name it
-- in `raw_pages.dict_id`. NULL there means no dictionary: a zstd frame
-- written before the file had one, or a zlib receipt from an earlier
-- version (both stay readable, told apart by their first bytes).
--
-- `rebuild --recompress` trains a new dictionary on a sample of the whole
-- file and rewrites every receipt against it; dictionaries no receipt
-- names any more are then dropped.

CREATE TABLE receipt_dictionaries (
    dict_id      INTEGER PRIMARY KEY,
    created_at   TEXT NOT NULL,
    pages        INTEGER NOT NULL,            -- pages it was trained on
    sample_bytes INTEGER NOT NULL,            -- their bytes, uncompressed
    dictionary   BLOB NOT NULL                -- zstd dictionary
);

ALTER TABLE raw_pages ADD COLUMN dict_id INTEGER REFERENCES receipt_dictionaries(dict_id);
