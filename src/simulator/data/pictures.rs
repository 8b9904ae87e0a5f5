//! The picture-address shapes the simulator's rows carry.

use super::{hash, Gen};

/// Which picture addresses the simulator's rows carry. Real answers show
/// several shapes built around the row's KeyNo, a default picture without
/// one, and none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pictures {
    /// The vendor document's `https://qccdata.qichacha.com/AutoImage/<KeyNo>.jpg?x-oss-process=image/resize,w_120`.
    Document,
    /// `https://image.qcc.com/auto/<KeyNo>.jpg?x-oss-process=style/logo_120`.
    QccImage,
    /// `https://co-image.qichacha.com/CompanyImage/<KeyNo>.jpg?x-oss-process=image/resize,w_160`.
    CoImage,
    /// `https://co-image.qichacha.com/CompanyImage/default.jpg`, whatever the KeyNo.
    DefaultPicture,
    /// Each company one of the four, or no picture at all (by the seed and its key).
    #[default]
    Mixed,
}

impl Pictures {
    /// Every single format (not [`Pictures::Mixed`]).
    pub const FORMATS: [Pictures; 4] =
        [Pictures::Document, Pictures::QccImage, Pictures::CoImage, Pictures::DefaultPicture];

    pub fn name(self) -> &'static str {
        match self {
            Pictures::Document => "qccdata.qichacha.com/AutoImage (the vendor document's)",
            Pictures::QccImage => "image.qcc.com/auto",
            Pictures::CoImage => "co-image.qichacha.com/CompanyImage",
            Pictures::DefaultPicture => "co-image default.jpg",
            Pictures::Mixed => "mixed per company, some without",
        }
    }

    /// The address for `key_no`, or none.
    pub(super) fn address(self, key_no: &str) -> Option<String> {
        match self {
            Pictures::Document => {
                Some(format!("https://qccdata.qichacha.com/AutoImage/{key_no}.jpg?x-oss-process=image/resize,w_120"))
            }
            Pictures::QccImage => Some(format!("https://image.qcc.com/auto/{key_no}.jpg?x-oss-process=style/logo_120")),
            Pictures::CoImage => Some(format!(
                "https://co-image.qichacha.com/CompanyImage/{key_no}.jpg?x-oss-process=image/resize,w_160"
            )),
            Pictures::DefaultPicture => Some("https://co-image.qichacha.com/CompanyImage/default.jpg".into()),
            Pictures::Mixed => None,
        }
    }

    /// What a company's rows carry: [`Pictures::Mixed`] picks per company,
    /// `None` for a company whose rows have no picture.
    pub(super) fn of_company(self, seed: u64, search_key: &str) -> Option<Pictures> {
        if self != Pictures::Mixed {
            return Some(self);
        }
        let roll = Gen(hash(seed, &[b"picture", search_key.trim().as_bytes()])).below(5);
        Pictures::FORMATS.get(roll as usize).copied()
    }
}
