//! The wire format of `Customer/GetList` (docs/design.md §1.2) and its defensive parser.
//!
//! Real responses vary: `Status` may be a string or a number, `Paging` and
//! `Result` are `null` on anything but 200, `TotalRecords` may be a numeric
//! string, and every `ClientList` field may be missing, `null`, `""` or `"-"`.
//! Nothing here panics on any input; a body that cannot be understood is a
//! [`WireError`], which the pipeline treats as transient.

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Why a response body could not be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("response body is not JSON ({0})")]
    NotJson(String),
    #[error("response has no usable Status field")]
    NoStatus,
    #[error("response lists {0} rows on one page, more than any page holds")]
    TooManyRows(usize),
}

/// The most rows or years one answer may list. A page holds at most 50
/// rows (`pageSize` ≤ 50) and a company a few dozen periods; an answer
/// listing more is not a page (a proxy's or a broken server's), and taking
/// it would let one body of a few MiB become hundreds of MiB of rows.
pub const MAX_LIST: usize = 1_000;

/// A parsed response. `year_list` and `clients` are empty when `Result` is null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub status: u32,
    pub message: Option<String>,
    pub order_number: Option<String>,
    pub total_records: Option<u64>,
    pub year_list: Vec<String>,
    pub clients: Vec<ClientRow>,
}

/// One customer row, normalised for storage (docs/design.md §1.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientRow {
    pub year: Option<String>,
    pub key_no: Option<String>,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub sales_amount: Option<f64>,
    pub sales_amount_text: Option<String>,
    pub sales_percent: Option<f64>,
    pub sales_percent_text: Option<String>,
    pub relationship: Option<String>,
    pub source: Option<String>,
}

/// Parse a response body. Never panics; see the module docs for what is accepted.
///
/// One typed pass over the body, with no JSON tree in between (this runs
/// for every page, and a tree turns one byte of an odd body into up to a
/// hundred bytes of memory). It is tolerant where answers vary: a `Paging`
/// or `Result` that is not an object, a row that is not an object, a list
/// that is not a list, keys it does not know, a key given twice (the last
/// counts) are passed over. Lists are held up to [`MAX_LIST`] elements; an
/// answer listing more is [`WireError::TooManyRows`].
pub fn parse(body: &[u8]) -> Result<Response, WireError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    answer.into_response()
}

/// A JSON value as text, exactly as received: strings as they are, numbers
/// and booleans as their JSON spelling, `null` as `None`; a list or object
/// (never expected) as its compact JSON text, written as it is read.
#[derive(Default)]
struct Loose(Option<String>);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose, E> {
                Ok(Loose(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose(Some(float_text(v))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_none<E>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Loose, A::Error> {
                JsonText::list(seq).map(|t| Loose(Some(t)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Loose, A::Error> {
                JsonText::object(map).map(|t| Loose(Some(t)))
            }
        }
        d.deserialize_any(V)
    }
}

impl Loose {
    /// As a plain text column: `None` for missing, null, `""` and `"-"`.
    fn field(self) -> Option<String> {
        self.0.filter(|s| {
            let t = s.trim();
            !t.is_empty() && t != "-"
        })
    }
}

/// How serde_json spells a float (a non-finite one as Rust does).
fn float_text(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())
}

/// Any JSON value as its compact text, written element by element as it
/// is read: no tree is built, so the text is all it holds.
struct JsonText(String);

impl JsonText {
    fn list<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<String, A::Error> {
        let mut out = String::from("[");
        while let Some(JsonText(t)) = seq.next_element()? {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&t);
        }
        out.push(']');
        Ok(out)
    }

    fn object<'de, A: MapAccess<'de>>(mut map: A) -> Result<String, A::Error> {
        let mut out = String::from("{");
        while let Some(key) = map.next_key::<String>()? {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&quoted(&key));
            out.push(':');
            out.push_str(&map.next_value::<JsonText>()?.0);
        }
        out.push('}');
        Ok(out)
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<JsonText, E> {
                Ok(JsonText(quoted(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<JsonText, E> {
                Ok(JsonText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<JsonText, E> {
                Ok(JsonText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<JsonText, E> {
                Ok(JsonText(float_text(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<JsonText, E> {
                Ok(JsonText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<JsonText, E> {
                Ok(JsonText("null".into()))
            }
            fn visit_none<E>(self) -> Result<JsonText, E> {
                Ok(JsonText("null".into()))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<JsonText, D::Error> {
                JsonText::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<JsonText, A::Error> {
                JsonText::list(seq).map(JsonText)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<JsonText, A::Error> {
                JsonText::object(map).map(JsonText)
            }
        }
        d.deserialize_any(V)
    }
}

/// The visitor methods of a value that only an object or a list feeds:
/// every scalar is passed over as `$none`.
macro_rules! pass_over_scalars {
    ($ty:ty, $none:expr) => {
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<$ty, D::Error> {
            <$ty>::deserialize(d)
        }
        fn visit_none<E>(self) -> Result<$ty, E> {
            Ok($none)
        }
        fn visit_unit<E>(self) -> Result<$ty, E> {
            Ok($none)
        }
        fn visit_bool<E>(self, _: bool) -> Result<$ty, E> {
            Ok($none)
        }
        fn visit_i64<E>(self, _: i64) -> Result<$ty, E> {
            Ok($none)
        }
        fn visit_u64<E>(self, _: u64) -> Result<$ty, E> {
            Ok($none)
        }
        fn visit_f64<E>(self, _: f64) -> Result<$ty, E> {
            Ok($none)
        }
        fn visit_str<E>(self, _: &str) -> Result<$ty, E> {
            Ok($none)
        }
    };
}

/// A part of the answer read from the keys of a JSON object: each key it
/// knows is [`FromObject::take`]n, every other one (and any key given again
/// later counts last) is passed over.
trait FromObject: Default {
    /// Read `key`'s value from `map` if this part keeps it; `false`: it does not.
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;

    fn from_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut part = Self::default();
        while let Some(Key(key)) = map.next_key()? {
            let taken = match key {
                Some(key) => part.take(key, &mut map)?,
                None => false,
            };
            if !taken {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(part)
    }
}

/// A JSON object read as `T`, or `None` for anything else (which is passed over).
struct Tolerant<T>(Option<T>);

impl<T> Default for Tolerant<T> {
    fn default() -> Self {
        Tolerant(None)
    }
}

impl<'de, T: FromObject> Deserialize<'de> for Tolerant<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: FromObject> Visitor<'de> for V<T> {
            type Value = Tolerant<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Tolerant<T>, A::Error> {
                T::from_object(map).map(|t| Tolerant(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tolerant<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Tolerant(None))
            }
            pass_over_scalars!(Tolerant<T>, Tolerant(None));
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A JSON list, its elements held up to [`MAX_LIST`] and all of them
/// counted; anything that is not a list is an empty one.
struct Capped<T> {
    items: Vec<T>,
    len: usize,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped { items: Vec::new(), len: 0 }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Capped<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Capped<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capped<T>, A::Error> {
                let mut out = Capped::default();
                while out.items.len() < MAX_LIST {
                    match seq.next_element()? {
                        Some(x) => out.items.push(x),
                        None => break,
                    }
                }
                out.len = out.items.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    out.len += 1;
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Capped<T>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Capped::default())
            }
            pass_over_scalars!(Capped<T>, Capped::default());
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The top level of an answer: an object (anything else is not an answer).
#[derive(Default)]
struct Answer {
    order_number: Loose,
    paging: Tolerant<Paging>,
    result: Tolerant<ResultPart>,
    status: Loose,
    message: Loose,
}

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Answer;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an answer object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Answer, A::Error> {
                Answer::from_object(map)
            }
        }
        d.deserialize_map(V)
    }
}

impl FromObject for Answer {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "OrderNumber" => self.order_number = map.next_value()?,
            "Paging" => self.paging = map.next_value()?,
            "Result" => self.result = map.next_value()?,
            "Status" => self.status = map.next_value()?,
            "Message" => self.message = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[derive(Default)]
struct Paging {
    total_records: Loose,
}

impl FromObject for Paging {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "TotalRecords" => self.total_records = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[derive(Default)]
struct ResultPart {
    year_list: Capped<Loose>,
    client_list: Capped<Tolerant<Client>>,
}

impl FromObject for ResultPart {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "YearList" => self.year_list = map.next_value()?,
            "ClientList" => self.client_list = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[derive(Default)]
struct Client {
    year: Loose,
    key_no: Loose,
    name: Loose,
    image_url: Loose,
    sales_amount: Loose,
    sales_percent: Loose,
    relationship: Loose,
    source: Loose,
}

impl FromObject for Client {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "Year" => &mut self.year,
            "KeyNo" => &mut self.key_no,
            "Name" => &mut self.name,
            "ImageUrl" => &mut self.image_url,
            "SalesAmount" => &mut self.sales_amount,
            "SalesPercent" => &mut self.sales_percent,
            "Relationship" => &mut self.relationship,
            "Source" => &mut self.source,
            _ => return Ok(false),
        };
        *slot = map.next_value()?;
        Ok(true)
    }
}

/// An object's key, kept only when it is one of the few a part reads (a
/// key the answer adds is not copied).
struct Key(Option<&'static str>);

/// Every key some part reads (a key of another part is passed over by its `take`).
const KNOWN_KEYS: [&str; 16] = [
    "OrderNumber",
    "Paging",
    "Result",
    "Status",
    "Message",
    "TotalRecords",
    "YearList",
    "ClientList",
    "Year",
    "KeyNo",
    "Name",
    "ImageUrl",
    "SalesAmount",
    "SalesPercent",
    "Relationship",
    "Source",
];

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(KNOWN_KEYS.iter().find(|k| **k == v).copied()))
            }
        }
        d.deserialize_str(V)
    }
}

fn loose_u64(text: Option<&str>) -> Option<u64> {
    let t = text?.trim();
    t.parse::<u64>().ok().or_else(|| t.parse::<f64>().ok().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
}

/// A status code: a number no code exceeds (`"4294967496"` is not 200).
fn status_code(n: Option<u64>) -> Result<u32, WireError> {
    n.and_then(|n| u32::try_from(n).ok()).ok_or(WireError::NoStatus)
}

impl Answer {
    fn into_response(self) -> Result<Response, WireError> {
        let status = status_code(loose_u64(self.status.0.as_deref()))?;
        let mut out = Response {
            status,
            message: self.message.0,
            order_number: self.order_number.0,
            total_records: self.paging.0.and_then(|p| loose_u64(p.total_records.0.as_deref())),
            ..Response::default()
        };
        if let Some(result) = self.result.0 {
            let longest = result.year_list.len.max(result.client_list.len);
            if longest > MAX_LIST {
                return Err(WireError::TooManyRows(longest));
            }
            out.year_list = result.year_list.items.into_iter().filter_map(Loose::field).collect();
            out.clients = result.client_list.items.into_iter().filter_map(|c| c.0).map(Client::into_row).collect();
        }
        Ok(out)
    }
}

impl Client {
    fn into_row(self) -> ClientRow {
        let sales_amount_text = self.sales_amount.0;
        let sales_percent_text = self.sales_percent.0;
        ClientRow {
            year: self.year.field(),
            key_no: self.key_no.field(),
            name: self.name.field(),
            image_url: self.image_url.field(),
            sales_amount: sales_amount_text.as_deref().and_then(parse_number),
            sales_amount_text,
            sales_percent: sales_percent_text.as_deref().and_then(parse_number),
            sales_percent_text,
            relationship: self.relationship.field(),
            source: self.source.field(),
        }
    }
}

/// A number as the API writes it: `"125.47"`, `"1,234.5"`, `"12.5%"`, `" 3 "`.
/// Anything that is not a finite number (`"-"`, `"未披露"`) is `None`.
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let t = t.strip_suffix('%').or_else(|| t.strip_suffix('％')).unwrap_or(t).trim();
    // Thousands separators are rare: copy the text only when there are some.
    let number = if t.contains([',', '，']) {
        t.chars().filter(|c| *c != ',' && *c != '，').collect::<String>().parse::<f64>()
    } else {
        t.parse::<f64>()
    };
    number.ok().filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_vendor_example() {
        let body = r#"{"OrderNumber":"CUSTOMER2019103015270721852048",
          "Paging":{"PageSize":50,"PageIndex":1,"TotalRecords":9},
          "Result":{"YearList":["2018","2017"],
            "ClientList":[{"Year":"2018","KeyNo":"c420","Name":"吴江市联发置业有限公司",
              "ImageUrl":"https://x/y.jpg","SalesAmount":"125.47","SalesPercent":"48.51",
              "Relationship":"","Source":"年报"}]},
          "Status":"200","Message":"【有效请求】查询成功"}"#;
        let r = parse(body.as_bytes()).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.total_records, Some(9));
        assert_eq!(r.year_list, vec!["2018", "2017"]);
        assert_eq!(r.order_number.as_deref(), Some("CUSTOMER2019103015270721852048"));
        let c = &r.clients[0];
        assert_eq!(c.name.as_deref(), Some("吴江市联发置业有限公司"));
        assert_eq!(c.sales_amount, Some(125.47));
        assert_eq!(c.sales_amount_text.as_deref(), Some("125.47"));
        assert_eq!(c.relationship, None);
    }

    #[test]
    fn accepts_numeric_status_and_string_total() {
        let r = parse(br#"{"Status":200,"Paging":{"TotalRecords":"120"},"Result":null}"#).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.total_records, Some(120));
        assert!(r.clients.is_empty());
    }

    #[test]
    fn null_paging_and_result_on_errors() {
        let r = parse(
            r#"{"OrderNumber":null,"Paging":null,"Result":null,"Status":"201","Message":"【有效请求】查询无结果"}"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.total_records, None);
    }

    #[test]
    fn odd_fields_become_null_but_text_is_kept() {
        let body = r#"{"Status":"200","Result":{"ClientList":[
            {"Name":"-","KeyNo":"","SalesAmount":"1,234.5","SalesPercent":"12.5%"},
            {"SalesAmount":"-","SalesPercent":"未披露","Year":null},
            {"SalesAmount":88,"SalesPercent":null}]}}"#;
        let r = parse(body.as_bytes()).unwrap();
        let [a, b, c] = &r.clients[..] else { panic!("three rows") };
        assert_eq!((a.name.clone(), a.key_no.clone()), (None, None));
        assert_eq!((a.sales_amount, a.sales_percent), (Some(1234.5), Some(12.5)));
        assert_eq!(b.sales_amount_text.as_deref(), Some("-"));
        assert_eq!(b.sales_amount, None);
        assert_eq!(b.sales_percent_text.as_deref(), Some("未披露"));
        assert_eq!(b.sales_percent, None);
        assert_eq!(b.year, None);
        assert_eq!(c.sales_amount_text.as_deref(), Some("88"));
        assert_eq!(c.sales_amount, Some(88.0));
        assert_eq!(c.sales_percent_text, None);
    }

    #[test]
    fn html_and_truncated_bodies_are_errors_not_panics() {
        assert!(matches!(parse(b"<html>502 Bad Gateway</html>"), Err(WireError::NotJson(_))));
        assert!(matches!(parse(br#"{"Status":"200","Result":{"Client"#), Err(WireError::NotJson(_))));
        assert_eq!(parse(br#"{"Message":"x"}"#), Err(WireError::NoStatus));
        assert!(parse(b"").is_err());
        // A status past u32 is no status, not a code that wrapped round to 200.
        assert_eq!(parse(br#"{"Status":"4294967496"}"#), Err(WireError::NoStatus));
        assert_eq!(parse(br#"{"Status":4294967496,"Result":"x"}"#), Err(WireError::NoStatus));
    }

    #[test]
    fn an_answer_listing_more_rows_than_a_page_holds_is_refused() {
        let rows = vec!["{}"; MAX_LIST + 1].join(",");
        let body = format!(r#"{{"Status":"200","Result":{{"ClientList":[{rows}]}}}}"#);
        assert_eq!(parse(body.as_bytes()), Err(WireError::TooManyRows(MAX_LIST + 1)));
        let body = format!(r#"{{"Status":"200","Result":{{"ClientList":[1,{rows}]}}}}"#);
        assert_eq!(parse(body.as_bytes()), Err(WireError::TooManyRows(MAX_LIST + 2)));
    }

    #[test]
    fn odd_shapes_fall_back_to_the_tolerant_parser() {
        // Result as a string, a row that is not an object: still usable.
        let r = parse(br#"{"Status":"201","Result":"none"}"#).unwrap();
        assert_eq!(r.status, 201);
        let r = parse(r#"{"Status":"200","Result":{"ClientList":[1,{"Name":"甲"}]}}"#.as_bytes()).unwrap();
        assert_eq!(r.clients.len(), 1);
        assert_eq!(r.clients[0].name.as_deref(), Some("甲"));
        // A nested value where a scalar was expected keeps its JSON text.
        let r = parse(br#"{"Status":"200","Result":{"ClientList":[{"SalesAmount":{"v":1}}]}}"#).unwrap();
        assert_eq!(r.clients[0].sales_amount_text.as_deref(), Some(r#"{"v":1}"#));
        // Numbers where texts were expected, and a key given twice (the last counts).
        let body = br#"{"Status":200,"Paging":{"TotalRecords":"9","TotalRecords":10},"Result":{"YearList":["2018",2017],"ClientList":[{"Year":"2018-06","SalesAmount":125.47,"SalesPercent":"-","Name":"","Name":"B"}]}}"#;
        let r = parse(body).unwrap();
        assert_eq!(
            (r.status, r.total_records, r.year_list.clone()),
            (200, Some(10), vec!["2018".into(), "2017".into()])
        );
        let c = &r.clients[0];
        assert_eq!(
            (c.year.as_deref(), c.sales_amount, c.sales_amount_text.as_deref()),
            (Some("2018-06"), Some(125.47), Some("125.47"))
        );
        assert_eq!((c.sales_percent, c.name.as_deref()), (None, Some("B")));
        // Paging, Result and lists of another shape are passed over.
        let r = parse(br#"{"Status":"200","Paging":[1,2],"Result":{"YearList":"2018","ClientList":{"a":1}}}"#).unwrap();
        assert_eq!((r.total_records, r.year_list.len(), r.clients.len()), (None, 0, 0));
        // Nested text is kept in JSON's own spelling.
        let r = parse(br#"{"Status":"200","Result":{"ClientList":[{"Name":[1,"a\"b",{"k":null,"f":1.5}]}]}}"#).unwrap();
        assert_eq!(r.clients[0].name.as_deref(), Some(r#"[1,"a\"b",{"k":null,"f":1.5}]"#));
    }

    #[test]
    fn numbers_in_every_spelling() {
        assert_eq!(parse_number(" 1,234.50 "), Some(1234.5));
        assert_eq!(parse_number("48.51%"), Some(48.51));
        assert_eq!(parse_number("-"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("-3.5"), Some(-3.5));
    }
}
