//! Deterministic company data for the simulator (SPEC §6).
//!
//! Everything derives from `(seed, search key)` through a small fixed hash, so
//! the same key always has the same years and customers, in any process and
//! any version of this crate's dependencies. Tests use [`company`] and [`row`]
//! to compute exactly what the simulator holds and compare it with the database.

use serde_json::{json, Map, Value};

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

/// Search keys that always behave a particular way (documented in the README).
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

/// The company behind a search key. Keys are matched after trimming.
pub fn company(seed: u64, search_key: &str) -> SimCompany {
    let key = search_key.trim();
    if key.starts_with(triggers::HUGE) {
        return SimCompany {
            years: vec![SimYear { year: "2023".into(), total: 5234 }, SimYear { year: "2022".into(), total: 12 }],
        };
    }
    if key.starts_with(triggers::NO_RESULT) {
        return SimCompany { years: vec![] };
    }
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

/// The company as the API reports it after `extra_years` more annual reports:
/// the same years and rows, plus new years after its latest (companies with
/// no years stay without). Lets tests see "the API added a year".
pub fn company_at(seed: u64, search_key: &str, extra_years: u32) -> SimCompany {
    let mut c = company(seed, search_key);
    if extra_years == 0 || c.years.is_empty() {
        return c;
    }
    let latest: u32 = c.years[0].year.parse().unwrap_or(LATEST_YEAR);
    let key = search_key.trim();
    let mut years: Vec<SimYear> = (1..=extra_years)
        .rev()
        .map(|k| {
            let year = (latest + k).to_string();
            let mut g = Gen(hash(seed, &[b"extra", key.as_bytes(), year.as_bytes()]));
            SimYear { total: 1 + g.below(120) as u32, year }
        })
        .collect();
    years.append(&mut c.years);
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
    let key = search_key.trim();
    let rev = revision.to_le_bytes();
    let mut parts: Vec<&[u8]> = vec![b"row", key.as_bytes(), year.as_bytes()];
    let idx = index.to_le_bytes();
    parts.push(&idx);
    if revision != 0 {
        parts.push(&rev);
    }
    let mut g = Gen(hash(seed, &parts));
    let half_year = g.below(6) == 0;
    let mut m = Map::new();
    m.insert("Year".into(), json!(if half_year { format!("{year}-06") } else { year.to_string() }));

    let name_roll = g.below(40);
    let name = match name_roll {
        0 => Value::Null,
        1 => json!(""),
        2 => json!("-"),
        // A handful of names repeat, so identity can never rely on the name.
        3..=5 => json!("中国石油化工股份有限公司"),
        _ => json!(format!("{}{}{}{}", g.pick(CITIES), g.pick(WORDS), g.pick(TRADES), g.pick(SUFFIXES))),
    };
    if name_roll != 6 {
        m.insert("Name".into(), name);
    }
    let key_no = format!("{:016x}{:016x}", g.next(), g.next());
    match g.below(12) {
        0 => {}
        1 => {
            m.insert("KeyNo".into(), json!(""));
        }
        _ => {
            m.insert("KeyNo".into(), json!(key_no.clone()));
        }
    }
    if g.below(3) > 0 {
        m.insert(
            "ImageUrl".into(),
            json!(format!("https://qccdata.qichacha.com/AutoImage/{key_no}.jpg?x-oss-process=image/resize,w_120")),
        );
    } else {
        m.insert("ImageUrl".into(), json!(""));
    }
    let cents = 1 + g.below(5_000_000);
    let amount = match g.below(20) {
        0 => Value::Null,
        1 => json!("-"),
        2 => json!("未披露"),
        3 => json!(format!("{},{:03}.{:02}", cents / 100_000, (cents / 100) % 1000, cents % 100)),
        4 => json!((cents as f64) / 100.0),
        _ => json!(format!("{}.{:02}", cents / 100, cents % 100)),
    };
    if !matches!(amount, Value::Null) || g.below(2) == 0 {
        m.insert("SalesAmount".into(), amount);
    }
    let bp = g.below(10_000);
    let percent = match g.below(15) {
        0 => json!("-"),
        1 => Value::Null,
        2 => json!(format!("{}.{:02}%", bp / 100, bp % 100)),
        _ => json!(format!("{}.{:02}", bp / 100, bp % 100)),
    };
    m.insert("SalesPercent".into(), percent);
    m.insert("Relationship".into(), json!(if g.below(10) == 0 { "关联方" } else { "" }));
    m.insert("Source".into(), json!(if half_year { "半年报" } else { "年报" }));
    Value::Object(m)
}

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
mod tests {
    use super::*;

    #[test]
    fn same_key_same_data() {
        assert_eq!(company(7, "某某公司"), company(7, " 某某公司 "));
        assert_eq!(row(7, "k", "2020", 3), row(7, "k", "2020", 3));
        assert_ne!(company(7, "甲公司"), company(8, "甲公司"));
    }

    #[test]
    fn data_covers_the_odd_cases() {
        let mut years = 0;
        let mut empty_companies = 0;
        let mut big_years = 0;
        for i in 0..500 {
            let c = company(1, &format!("公司{i}"));
            years += c.years.len();
            empty_companies += usize::from(c.years.is_empty());
            big_years += c.years.iter().filter(|y| y.total > 100).count();
            assert!(c.years.len() <= 8);
        }
        assert!(empty_companies > 10 && years > 1000 && big_years > 50);
    }
}
