//! The wire format of `Customer/GetList` (docs/design.md §1.2) and its defensive parser.
//!
//! Real responses vary: `Status` may be a string or a number, `Paging` and
//! `Result` are `null` on anything but 200, `TotalRecords` may be a numeric
//! string, and every `ClientList` field may be missing, `null`, `""` or `"-"`.
//! Nothing here panics on any input; a body that cannot be understood is a
//! [`WireError`], which the pipeline treats as transient.

use serde::Deserialize;
use serde_json::Value;

/// Why a response body could not be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("response body is not JSON ({0})")]
    NotJson(String),
    #[error("response has no usable Status field")]
    NoStatus,
}

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

#[derive(Deserialize)]
struct RawResponse {
    #[serde(rename = "OrderNumber", default)]
    order_number: Option<Value>,
    #[serde(rename = "Paging", default)]
    paging: Option<Value>,
    #[serde(rename = "Result", default)]
    result: Option<Value>,
    #[serde(rename = "Status", default)]
    status: Option<Value>,
    #[serde(rename = "Message", default)]
    message: Option<Value>,
}

/// Parse a response body. Never panics; see the module docs for what is accepted.
///
/// The fast path deserialises straight into typed rows (no intermediate JSON
/// tree: this runs for every page). A body of a shape it does not expect —
/// `Result` a string, a row that is not an object — falls back to a slower,
/// tree-based parse that skips what it cannot use, so odd answers are never
/// fatal.
pub fn parse(body: &[u8]) -> Result<Response, WireError> {
    match serde_json::from_slice::<FastResponse>(body) {
        Ok(fast) => fast.into_response(),
        Err(_) => parse_tree(body),
    }
}

/// A JSON scalar as text, exactly as received: strings as they are, numbers
/// and booleans as their JSON spelling, `null` as `None`; an array or object
/// (never expected) as its JSON text.
#[derive(Default)]
struct Loose(Option<String>);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
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
                Ok(Loose(Some(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))))
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
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<Loose, A::Error> {
                let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(a))?;
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<Loose, A::Error> {
                let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(a))?;
                Ok(Loose(Some(v.to_string())))
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

#[derive(Deserialize)]
struct FastResponse {
    #[serde(rename = "OrderNumber", default)]
    order_number: Loose,
    #[serde(rename = "Paging", default)]
    paging: Option<FastPaging>,
    #[serde(rename = "Result", default)]
    result: Option<FastResult>,
    #[serde(rename = "Status", default)]
    status: Loose,
    #[serde(rename = "Message", default)]
    message: Loose,
}

#[derive(Deserialize)]
struct FastPaging {
    #[serde(rename = "TotalRecords", default)]
    total_records: Loose,
}

#[derive(Deserialize)]
struct FastResult {
    #[serde(rename = "YearList", default)]
    year_list: Option<Vec<Loose>>,
    #[serde(rename = "ClientList", default)]
    client_list: Option<Vec<FastClient>>,
}

#[derive(Deserialize)]
struct FastClient {
    #[serde(rename = "Year", default)]
    year: Loose,
    #[serde(rename = "KeyNo", default)]
    key_no: Loose,
    #[serde(rename = "Name", default)]
    name: Loose,
    #[serde(rename = "ImageUrl", default)]
    image_url: Loose,
    #[serde(rename = "SalesAmount", default)]
    sales_amount: Loose,
    #[serde(rename = "SalesPercent", default)]
    sales_percent: Loose,
    #[serde(rename = "Relationship", default)]
    relationship: Loose,
    #[serde(rename = "Source", default)]
    source: Loose,
}

fn loose_u64(text: Option<&str>) -> Option<u64> {
    let t = text?.trim();
    t.parse::<u64>().ok().or_else(|| t.parse::<f64>().ok().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
}

impl FastResponse {
    fn into_response(self) -> Result<Response, WireError> {
        let status = loose_u64(self.status.0.as_deref()).ok_or(WireError::NoStatus)? as u32;
        let mut out = Response {
            status,
            message: self.message.0,
            order_number: self.order_number.0,
            total_records: self.paging.and_then(|p| loose_u64(p.total_records.0.as_deref())),
            ..Response::default()
        };
        if let Some(result) = self.result {
            out.year_list = result.year_list.unwrap_or_default().into_iter().filter_map(Loose::field).collect();
            out.clients = result
                .client_list
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let sales_amount_text = c.sales_amount.0;
                    let sales_percent_text = c.sales_percent.0;
                    ClientRow {
                        year: c.year.field(),
                        key_no: c.key_no.field(),
                        name: c.name.field(),
                        image_url: c.image_url.field(),
                        sales_amount: sales_amount_text.as_deref().and_then(parse_number),
                        sales_amount_text,
                        sales_percent: sales_percent_text.as_deref().and_then(parse_number),
                        sales_percent_text,
                        relationship: c.relationship.field(),
                        source: c.source.field(),
                    }
                })
                .collect();
        }
        Ok(out)
    }
}

/// The tolerant path: a JSON tree, taking what it can use.
fn parse_tree(body: &[u8]) -> Result<Response, WireError> {
    let raw: RawResponse = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    let status = raw.status.as_ref().and_then(as_u64).ok_or(WireError::NoStatus)? as u32;
    let total_records = raw.paging.as_ref().and_then(|p| p.get("TotalRecords")).and_then(as_u64);
    let mut out = Response {
        status,
        message: raw.message.as_ref().and_then(scalar_text),
        order_number: raw.order_number.as_ref().and_then(scalar_text),
        total_records,
        ..Response::default()
    };
    if let Some(result) = raw.result.as_ref().and_then(Value::as_object) {
        if let Some(years) = result.get("YearList").and_then(Value::as_array) {
            out.year_list = years.iter().filter_map(field).collect();
        }
        if let Some(list) = result.get("ClientList").and_then(Value::as_array) {
            out.clients = list.iter().filter_map(Value::as_object).map(client_row).collect();
        }
    }
    Ok(out)
}

fn client_row(obj: &serde_json::Map<String, Value>) -> ClientRow {
    let get = |name: &str| obj.get(name).and_then(field);
    let exact = |name: &str| obj.get(name).and_then(scalar_text);
    let sales_amount_text = exact("SalesAmount");
    let sales_percent_text = exact("SalesPercent");
    ClientRow {
        year: get("Year"),
        key_no: get("KeyNo"),
        name: get("Name"),
        image_url: get("ImageUrl"),
        sales_amount: sales_amount_text.as_deref().and_then(parse_number),
        sales_amount_text,
        sales_percent: sales_percent_text.as_deref().and_then(parse_number),
        sales_percent_text,
        relationship: get("Relationship"),
        source: get("Source"),
    }
}

/// A field as stored in a plain text column: `NULL` for missing, null, `""`, `"-"`.
fn field(v: &Value) -> Option<String> {
    scalar_text(v).filter(|s| {
        let t = s.trim();
        !t.is_empty() && t != "-"
    })
}

/// The value's text exactly as received; `None` only for JSON `null`.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
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
        // Both parsers agree on the vendor example.
        let body = br#"{"Status":200,"Paging":{"TotalRecords":"9"},"Result":{"YearList":["2018",2017],"ClientList":[{"Year":"2018-06","SalesAmount":125.47,"SalesPercent":"-","Name":""}]}}"#;
        assert_eq!(parse(body).unwrap(), parse_tree(body).unwrap());
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
