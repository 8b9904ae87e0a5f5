//! The wire format of `Customer/GetList` (SPEC §1.2) and its defensive parser.
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

/// One customer row, normalised for storage (SPEC §1.2, §9 "Text columns").
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
pub fn parse(body: &[u8]) -> Result<Response, WireError> {
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
    let cleaned: String = t.chars().filter(|c| *c != ',' && *c != '，').collect();
    cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
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
    fn numbers_in_every_spelling() {
        assert_eq!(parse_number(" 1,234.50 "), Some(1234.5));
        assert_eq!(parse_number("48.51%"), Some(48.51));
        assert_eq!(parse_number("-"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("-3.5"), Some(-3.5));
    }
}
