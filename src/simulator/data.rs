//! Deterministic company data for the simulator (docs/design.md §6).
//!
//! Everything derives from `(seed, search key)` through a small fixed hash, so
//! the same key always has the same years and customers, in any process and
//! any version of this crate's dependencies. Tests use [`company`] and [`row`]
//! to compute exactly what the simulator holds and compare it with the database.

use serde_json::Value;

mod pictures;
pub use pictures::Pictures;

/// The simulator's view of one company.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCompany {
    /// Years, most recent first (the order of `YearList`).
    pub years: Vec<SimYear>,
}

/// One year of one company: how many customer rows it has.
#[derive(Debug, Clone, PartialEq)]
pub struct SimYear {
    pub year: String,
    pub total: u32,
}

impl SimCompany {
    pub fn year(&self, year: &str) -> Option<&SimYear> {
        self.years.iter().find(|y| y.year == year)
    }
}

/// Search keys that always behave a particular way (documented in docs/user-guide.md, "The simulator").
/// A key matches when it starts with the prefix, so tests can use many distinct
/// keys (`QCC-SIM-202-a`, `QCC-SIM-202-b`).
pub mod triggers {
    /// Discovery answers 201 (no result).
    pub const NO_RESULT: &str = "QCC-SIM-201";
    /// Every call answers 202 (query not acceptable).
    pub const REJECTED: &str = "QCC-SIM-202";
    /// Every call answers 205 (waiting to be processed).
    pub const PENDING: &str = "QCC-SIM-205";
    /// Every call answers 110 (same query erred repeatedly, wait 2 h).
    pub const PARKED: &str = "QCC-SIM-110";
    /// The first two calls for the key answer 120 (throttled), later ones data.
    pub const THROTTLED: &str = "QCC-SIM-120";
    /// One year holds 5,234 customers: pages past 100 answer 207.
    pub const HUGE: &str = "QCC-SIM-207";
    /// `QCC-SIM-CODE-nnn`: every call answers vendor code `nnn` (e.g. 199, 109).
    pub const CODE: &str = "QCC-SIM-CODE-";
    /// `QCC-SIM-HTTP-nnn`: every call answers HTTP status `nnn` (429 carries
    /// `Retry-After: 1`).
    pub const HTTP: &str = "QCC-SIM-HTTP-";

    /// The number after a `QCC-SIM-CODE-`/`QCC-SIM-HTTP-` prefix.
    pub fn number_after(key: &str, prefix: &str) -> Option<u32> {
        let rest = key.strip_prefix(prefix)?;
        rest.get(..3)?.parse().ok()
    }
}

/// FNV-1a over the parts, then a splitmix64 finaliser: stable forever.
pub fn hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for part in parts {
        for &b in *part {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A tiny deterministic generator seeded from a hash.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The latest year any simulated company reports.
pub const LATEST_YEAR: u32 = 2024;

/// What the simulated companies look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// 0–8 years, 0 to a few hundred customers a year: exercises paging.
    #[default]
    Paging,
    /// Shaped like annual-report disclosures: 3–11 years, mostly about five
    /// customers a period, a few heavy companies with hundreds a year.
    Annual,
}

/// The company behind a search key in the paging profile. Keys are matched
/// after trimming.
pub fn company(seed: u64, search_key: &str) -> SimCompany {
    company_of(Profile::Paging, seed, search_key, 0)
}

/// [`company`] after `extra_years` more annual reports (paging profile).
pub fn company_at(seed: u64, search_key: &str, extra_years: u32) -> SimCompany {
    company_of(Profile::Paging, seed, search_key, extra_years)
}

/// The company behind a search key in `profile`, as the API reports it after
/// `extra_years` more annual reports: the same years and rows, plus new years
/// after its latest (companies with no years stay without). Lets tests see
/// "the API added a year".
pub fn company_of(profile: Profile, seed: u64, search_key: &str, extra_years: u32) -> SimCompany {
    let key = search_key.trim();
    let mut c = if key.starts_with(triggers::HUGE) {
        SimCompany {
            years: vec![SimYear { year: "2023".into(), total: 5234 }, SimYear { year: "2022".into(), total: 12 }],
        }
    } else if key.starts_with(triggers::NO_RESULT) {
        SimCompany { years: vec![] }
    } else {
        match profile {
            Profile::Paging => paging_company(seed, key),
            Profile::Annual => annual_company(seed, key),
        }
    };
    if extra_years == 0 || c.years.is_empty() {
        return c;
    }
    let latest: u32 = c.years[0].year.parse().unwrap_or(LATEST_YEAR);
    let mut years: Vec<SimYear> = (1..=extra_years)
        .rev()
        .map(|k| {
            let year = (latest + k).to_string();
            let mut g = Gen(hash(seed, &[b"extra", key.as_bytes(), year.as_bytes()]));
            let total = match profile {
                Profile::Paging => 1 + g.below(120) as u32,
                Profile::Annual => 5,
            };
            SimYear { total, year }
        })
        .collect();
    years.append(&mut c.years);
    SimCompany { years }
}

fn paging_company(seed: u64, key: &str) -> SimCompany {
    let mut g = Gen(hash(seed, &[b"company", key.as_bytes()]));
    // 0–8 years; about one company in ten has none (discovery answers 201).
    let n_years = if g.below(10) == 0 { 0 } else { 1 + g.below(8) as u32 };
    let latest = LATEST_YEAR - g.below(3) as u32;
    let years = (0..n_years)
        .map(|i| {
            let bucket = g.below(100);
            let total = match bucket {
                0..=9 => 0,
                10..=64 => 1 + g.below(20),
                65..=91 => 21 + g.below(100),
                _ => 121 + g.below(280),
            } as u32;
            SimYear { year: (latest - i).to_string(), total }
        })
        .collect();
    SimCompany { years }
}

/// Annual reports name the top five customers; some name fewer or more, and
/// about one company in forty lists hundreds a year (its listing can pass the
/// 5,000-entry ceiling). One company in twenty has no disclosure at all.
fn annual_company(seed: u64, key: &str) -> SimCompany {
    let mut g = Gen(hash(seed, &[b"annual", key.as_bytes()]));
    if g.below(20) == 0 {
        return SimCompany { years: vec![] };
    }
    let n_years = 3 + g.below(9) as u32;
    let latest = LATEST_YEAR - g.below(2) as u32;
    let heavy = g.below(40) == 0;
    let years = (0..n_years)
        .map(|i| {
            let total = if heavy {
                100 + g.below(500)
            } else {
                match g.below(20) {
                    0..=13 => 5,
                    14..=16 => 1 + g.below(4),
                    _ => 6 + g.below(5),
                }
            } as u32;
            SimYear { year: (latest - i).to_string(), total }
        })
        .collect();
    SimCompany { years }
}

/// Customer row `index` (0-based) of `year` for a key, as the API's JSON object.
///
/// Rows exercise the parser: half-year rows (`"2021-06"`, 半年报), repeated and
/// missing names, `""`/`"-"`/`null`/missing fields, `"1,234.5"` and `"12.5%"`.
pub fn row(seed: u64, search_key: &str, year: &str, index: u32) -> Value {
    row_rev(seed, 0, search_key, year, index)
}

/// [`row`] as a later revision of the data would have it: revision 0 is
/// [`row`]; any other revision gives the same rows with different contents
/// (tests use it to see old rows replaced by new ones).
pub fn row_rev(seed: u64, revision: u64, search_key: &str, year: &str, index: u32) -> Value {
    row_pictured(seed, revision, search_key, year, index, Pictures::default())
}

/// [`row_rev`] with the picture addresses of a simulator configured with `pictures`.
pub fn row_pictured(seed: u64, revision: u64, search_key: &str, year: &str, index: u32, pictures: Pictures) -> Value {
    let row = SimRow::new(seed, revision, search_key, year, index).pictured(pictures, seed, search_key);
    serde_json::to_value(row).unwrap_or(Value::Null)
}

/// One customer row as the simulator serves it. The server writes it straight
/// to the response body (no JSON tree per row); [`row_rev`] is the same row
/// as a `Value`. Fields serialize in the API's order; a missing field is left
/// out, which is not the same as `null`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SimRow {
    year: String,
    #[serde(skip_serializing_if = "Field::is_missing")]
    name: Field,
    #[serde(skip_serializing_if = "Field::is_missing")]
    key_no: Field,
    #[serde(skip_serializing_if = "Field::is_missing")]
    image_url: Field,
    #[serde(skip_serializing_if = "Field::is_missing")]
    sales_amount: Field,
    sales_percent: Field,
    relationship: Field,
    source: Field,
    /// Fields real answers carry that the tool does not store (kept in receipts).
    #[serde(skip_serializing_if = "Field::is_missing")]
    product: Field,
    /// The KeyNo the picture address is built around (even when `KeyNo` is
    /// left out of the row).
    #[serde(skip)]
    picture_key: String,
    /// A placeholder (`客户一`, …), not a customer's name.
    #[serde(skip)]
    placeholder: bool,
}

/// A field's value on the wire.
#[derive(Debug)]
enum Field {
    Missing,
    Null,
    Static(&'static str),
    Text(String),
    Number(f64),
}

impl Field {
    fn is_missing(&self) -> bool {
        matches!(self, Field::Missing)
    }
}

impl serde::Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Missing | Field::Null => s.serialize_none(),
            Field::Static(t) => s.serialize_str(t),
            Field::Text(t) => s.serialize_str(t),
            Field::Number(n) => s.serialize_f64(*n),
        }
    }
}

/// Whether row `index` of `year` is a half-year row (`2021-06`) in the
/// original data: the first draw of [`SimRow::new`] at revision 0.
pub fn row_is_half_year(seed: u64, search_key: &str, year: &str, index: u32) -> bool {
    let idx = index.to_le_bytes();
    Gen(hash(seed, &[b"row", search_key.trim().as_bytes(), year.as_bytes(), &idx])).below(6) == 0
}

impl SimRow {
    /// The row as a report of `year` of the given kind (the timeline decides
    /// which report a row belongs to; its contents stay as drawn).
    pub fn in_report(mut self, year: &str, half: bool) -> SimRow {
        self.year = if half { format!("{year}-06") } else { year.to_string() };
        self.source = Field::Static(if half { "半年报" } else { "年报" });
        self
    }

    /// Row `index` of `year`; the draws from the generator are the contract
    /// (changing their order changes every simulated company).
    pub fn new(seed: u64, revision: u64, search_key: &str, year: &str, index: u32) -> SimRow {
        let key = search_key.trim();
        let rev = revision.to_le_bytes();
        let idx = index.to_le_bytes();
        let mut g = if revision != 0 {
            Gen(hash(seed, &[b"row", key.as_bytes(), year.as_bytes(), &idx, &rev]))
        } else {
            Gen(hash(seed, &[b"row", key.as_bytes(), year.as_bytes(), &idx]))
        };
        let half_year = g.below(6) == 0;
        let row_year = if half_year { format!("{year}-06") } else { year.to_string() };

        let name_roll = g.below(40);
        let name = match name_roll {
            0 => Field::Null,
            1 => Field::Static(""),
            2 => Field::Static("-"),
            // A handful of names repeat, so identity can never rely on the name.
            3..=5 => Field::Static("中国石油化工股份有限公司"),
            // Drawn (and dropped) so the draws stay the same for every roll.
            6 => {
                let _ = (g.pick(CITIES), g.pick(WORDS), g.pick(TRADES), g.pick(SUFFIXES));
                Field::Missing
            }
            _ => Field::Text(format!("{}{}{}{}", g.pick(CITIES), g.pick(WORDS), g.pick(TRADES), g.pick(SUFFIXES))),
        };
        let drawn_key = format!("{:016x}{:016x}", g.next(), g.next());
        // Most reports write a placeholder for a top-five customer (`客户一`,
        // `第一名`, …, without a KeyNo); a name has one KeyNo wherever it
        // appears, as a real customer does.
        let (name, key_no, placeholder) = match anonymised(seed, key, year, index) {
            Some(placeholder) => (Field::Text(placeholder), drawn_key.clone(), true),
            None => {
                let key_no = match &name {
                    Field::Static(n) if !n.is_empty() && *n != "-" => key_of_name(seed, n),
                    Field::Text(n) => key_of_name(seed, n),
                    _ => drawn_key.clone(),
                };
                (name, key_no, false)
            }
        };
        let key_no_field = match g.below(12) {
            _ if placeholder => Field::Missing,
            0 => Field::Missing,
            1 => Field::Static(""),
            _ => Field::Text(key_no.clone()),
        };
        // A row without its KeyNo keeps a picture of its own, as before.
        let key_no = if matches!(key_no_field, Field::Text(_)) { key_no } else { drawn_key };
        let image_url = if g.below(3) > 0 && !placeholder {
            Field::Text(format!("https://qccdata.qichacha.com/AutoImage/{key_no}.jpg?x-oss-process=image/resize,w_120"))
        } else {
            Field::Static("")
        };
        let cents = 1 + g.below(5_000_000);
        let mut sales_amount = match g.below(20) {
            0 => Field::Null,
            1 => Field::Static("-"),
            2 => Field::Static("未披露"),
            3 => Field::Text(format!("{},{:03}.{:02}", cents / 100_000, (cents / 100) % 1000, cents % 100)),
            4 => Field::Number((cents as f64) / 100.0),
            _ => Field::Text(format!("{}.{:02}", cents / 100, cents % 100)),
        };
        if matches!(sales_amount, Field::Null) && g.below(2) != 0 {
            sales_amount = Field::Missing;
        }
        let bp = g.below(10_000);
        let sales_percent = match g.below(15) {
            0 => Field::Static("-"),
            1 => Field::Null,
            2 => Field::Text(format!("{}.{:02}%", bp / 100, bp % 100)),
            _ => Field::Text(format!("{}.{:02}", bp / 100, bp % 100)),
        };
        SimRow {
            year: row_year,
            name,
            key_no: key_no_field,
            image_url,
            sales_amount,
            sales_percent,
            relationship: Field::Static(if g.below(10) == 0 { "关联方" } else { "" }),
            source: Field::Static(if half_year { "半年报" } else { "年报" }),
            product: Field::Missing,
            picture_key: key_no,
            placeholder,
        }
    }

    /// With `own` (a simulator whose companies name customers of their own),
    /// the row's named customer is the company's own: its name carries a
    /// number of the company's, and its KeyNo is that name's.
    pub fn own_names(mut self, own: bool, seed: u64, search_key: &str) -> SimRow {
        let named = match &self.name {
            Field::Text(n) => Some(n.clone()),
            Field::Static(n) if !n.is_empty() && *n != "-" => Some(n.to_string()),
            _ => None,
        };
        let (true, false, Some(name)) = (own, self.placeholder, named) else { return self };
        let tag = hash(seed, &[b"own-names", search_key.trim().as_bytes()]) % 1_000_000;
        let own_name = format!("{name}{tag:06}");
        let key = key_of_name(seed, &own_name);
        if matches!(self.key_no, Field::Text(_)) {
            self.key_no = Field::Text(key.clone());
            self.picture_key = key;
        }
        self.name = Field::Text(own_name);
        self
    }

    /// The row with the picture address `pictures` gives its company, and the
    /// extra fields some real rows carry (from their own draws, so that the
    /// rows' other contents stay as they were).
    pub fn pictured(mut self, pictures: Pictures, seed: u64, search_key: &str) -> SimRow {
        if let Field::Text(_) = self.image_url {
            self.image_url = match pictures.of_company(seed, search_key).and_then(|p| p.address(&self.picture_key)) {
                Some(url) => Field::Text(url),
                None => Field::Missing,
            };
        }
        let mut g = Gen(hash(seed, &[b"extra", self.picture_key.as_bytes()]));
        if g.below(4) == 0 {
            self.product = Field::Static(PRODUCTS[g.below(PRODUCTS.len() as u64) as usize]);
        }
        self
    }
}

/// How report `year` of a company writes its top five customers: a
/// placeholder for row `index` (`客户一`, `客户A`, `第一名`, `单位1`, in the
/// company's own style), or `None` where it names the customer. About six
/// reports in ten name none of the five, a quarter name one or two, the
/// rest all five; rows past the fifth are named.
fn anonymised(seed: u64, key: &str, year: &str, index: u32) -> Option<String> {
    if index >= 5 {
        return None;
    }
    let report = hash(seed, &[b"anonymised", key.as_bytes(), year.get(..4).unwrap_or(year).as_bytes()]);
    let named = match report % 100 {
        0..=59 => 0,
        60..=84 => 1 + (report >> 8) % 2,
        _ => 5,
    };
    if u64::from(index) < named {
        return None;
    }
    const CHINESE: [&str; 5] = ["一", "二", "三", "四", "五"];
    let n = index as usize;
    Some(match (report >> 16) % 5 {
        0 => format!("客户{}", CHINESE[n]),
        1 => format!("客户{}", (b'A' + n as u8) as char),
        2 => format!("第{}名", CHINESE[n]),
        3 => format!("单位{}", n + 1),
        _ => format!("客户{}", n + 1),
    })
}

/// The KeyNo of a named customer: the same wherever the name appears.
fn key_of_name(seed: u64, name: &str) -> String {
    let a = hash(seed, &[b"key-of-name", name.as_bytes()]);
    let b = hash(seed, &[b"key-of-name-2", name.as_bytes()]);
    format!("{a:016x}{b:016x}")
}

/// What some real rows name as the product sold (a field the tool does not store).
const PRODUCTS: &[&str] = &["工程施工", "原材料", "技术服务", "设备销售", "软件产品"];

const CITIES: &[&str] = &[
    "上海", "北京", "深圳", "苏州", "杭州", "南京", "广州", "成都", "武汉", "宁波", "青岛", "厦门", "无锡", "佛山",
    "东莞",
];
const WORDS: &[&str] = &[
    "华信", "恒达", "联发", "中科", "新航", "宏远", "金桥", "天成", "瑞丰", "鼎盛", "汇通", "永安", "博远", "创新",
    "海纳",
];
const TRADES: &[&str] = &[
    "置业",
    "电子",
    "科技",
    "精密机械",
    "新材料",
    "物流",
    "医药",
    "能源",
    "汽车零部件",
    "贸易",
    "建设工程",
    "信息技术",
];
const SUFFIXES: &[&str] = &["有限公司", "股份有限公司", "集团有限公司", "有限责任公司"];

#[cfg(test)]
mod tests;

#[cfg(test)]
mod golden;
