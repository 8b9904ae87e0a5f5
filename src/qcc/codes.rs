//! The status-code table of docs/design.md §1.3, as one table: every vendor code maps to
//! exactly one [`Action`], and the simulator takes its messages from here so the
//! two sides cannot drift apart.

/// What the pipeline does with an answer. One variant per row of docs/design.md §1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 200: store the rows, advance the checkpoint.
    Data,
    /// 201: no result; final, never retried.
    NoResult,
    /// 202, 208, …: this query is not acceptable; final, never retried.
    Rejected,
    /// 207: more than 5000 entries requested; stop paging, flag `truncated`.
    Truncated,
    /// 205: waiting to be processed; retry the same request a few times.
    Pending,
    /// 110: the same query erred repeatedly; park the company for 2 hours.
    Park,
    /// 120, 122, HTTP 429: global slow-down.
    Throttle,
    /// 199, 203, 5xx, timeouts, non-JSON, unknown codes: retry with backoff.
    Transient,
    /// 109, 116: daily limit reached; stop dispatching, exit 75.
    QuotaExhausted,
    /// Key, account, signature, clock or plan problem: stop at once, exit 78.
    Fatal,
}

/// One row of the vendor's status-code table, as docs/design.md §1.3 restates it.
pub struct CodeInfo {
    pub code: u32,
    pub action: Action,
    /// The vendor's message, without the 【有效请求】/【无效请求】 prefix.
    pub message: &'static str,
    /// `true` for codes the vendor lists under 有效请求 (billed, valid request).
    pub valid_request: bool,
}

macro_rules! table {
    ($($code:literal $action:ident $valid:literal $msg:literal;)*) => {
        /// Every code the vendor documents, plus 122 (concurrency too high).
        pub const TABLE: &[CodeInfo] = &[
            $(CodeInfo { code: $code, action: Action::$action, message: $msg, valid_request: $valid },)*
        ];
    };
}

table! {
    200 Data true "查询成功";
    201 NoResult true "查询无结果";
    202 Rejected true "查询参数错误， 请检查";
    205 Pending true "等待处理中";
    207 Truncated true "请求数据的条目数超过上限（5000）";
    208 Rejected true "此接口不支持此公司类型查询";
    209 Rejected true "企业数量超过上限";
    213 Rejected true "参数长度不能小于 2";
    215 Rejected true "不支持的查询关键字";
    218 Rejected true "该企业暂不支持空壳扫描";
    219 Rejected true "该企业暂不支持准入尽调";
    224 Rejected true "查询参数不被支持";
    105 Fatal true "接口已下线停用";
    110 Park true "当前相同查询连续出错，请等 2 小时后重试";
    101 Fatal false "当前的 KEY 无效或者还未生效中";
    102 Fatal false "当前 KEY 已欠费";
    103 Fatal false "当前 KEY 被暂停使用";
    104 Fatal false "请求 KEY 异常，请联系管理员";
    106 Fatal false "非法请求过多，请联系管理员";
    107 Fatal false "被禁止的 IP 或者签名错误";
    108 Fatal false "异常请求过多，请联系管理员";
    109 QuotaExhausted false "请求超过每日系统限制";
    111 Fatal false "接口权限未开通，请联系管理员";
    112 Fatal false "您的账号剩余使用量已不足或已过期";
    113 Fatal false "当前接口已被删除，请重新申请";
    114 Fatal false "当前接口已被禁用，请联系管理员";
    115 Fatal false "身份验证错误或者已过期";
    116 QuotaExhausted false "请求超过每日调用总量限制";
    117 Fatal false "当前不支持的请求参数调用量过多";
    118 Fatal false "当前接口不支持此方式的调用";
    119 Fatal false "您的帐号出现异常，请联系管理员";
    120 Throttle false "系统流量异常，请稍后再试";
    121 Fatal false "数据不能出境";
    122 Throttle false "并发请求过高，请稍后再试";
    199 Transient false "系统未知错误，请联系技术客服";
    203 Transient false "系统查询有异常，请联系技术人员";
    214 Fatal false "您还未购买过该接口，请先购买";
    223 Fatal false "当前接口的计费方式不支持此查询参数";
}

/// The table row for a code, if the vendor documents it.
pub fn info(code: u32) -> Option<&'static CodeInfo> {
    TABLE.iter().find(|c| c.code == code)
}

/// The action for a vendor `Status` code. Undocumented 1xx codes are account
/// problems (stop, 78); any other unknown code is transient.
pub fn classify(code: u32) -> Action {
    match info(code) {
        Some(i) => i.action,
        None if (100..200).contains(&code) => Action::Fatal,
        None => Action::Transient,
    }
}

/// The action for an HTTP status that is not 200 (the body is not consulted).
pub fn classify_http(status: u16) -> Action {
    match status {
        429 => Action::Throttle,
        500..=599 => Action::Transient,
        // Any other 4xx means a wrong endpoint or request: stop, exit 78.
        400..=499 => Action::Fatal,
        _ => Action::Transient,
    }
}

/// The full vendor message as the API sends it, with its 【…】 prefix.
pub fn wire_message(code: u32) -> String {
    match info(code) {
        Some(i) if i.valid_request => format!("【有效请求】{}", i.message),
        Some(i) => format!("【无效请求】{}", i.message),
        None => "【无效请求】系统未知错误".to_string(),
    }
}

/// What the user should check when a code stops the run (docs/design.md §1.3).
pub fn hint(code: u32) -> &'static str {
    match code {
        107 | 115 => "check QCC_SECRET_KEY and that this machine's clock is right (NTP)",
        102 | 112 => "the account balance is used up: top it up in the QCC console",
        111 | 214 => "the Customer/GetList method is not purchased for this key",
        101 | 103 | 104 => "check QCC_KEY: the key is unknown, paused or not yet active",
        106 | 108 | 119 => "the account is flagged for abnormal requests: contact QCC support before running again",
        109 | 116 => "the daily quota is spent: run again tomorrow (Beijing time); the run resumes where it stopped",
        105 | 113 | 114 | 118 => "the method is offline or disabled for this key: check --endpoint and the QCC console",
        _ => "see the vendor's status-code table (docs/design.md §1.3)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_spec_table_maps_to_its_action() {
        let expect = [
            (&[200][..], Action::Data),
            (&[201], Action::NoResult),
            (&[202, 208, 209, 213, 215, 218, 219, 224], Action::Rejected),
            (&[207], Action::Truncated),
            (&[205], Action::Pending),
            (&[110], Action::Park),
            (&[120, 122], Action::Throttle),
            (&[199, 203, 500, 999], Action::Transient),
            (&[109, 116], Action::QuotaExhausted),
            (
                &[101, 102, 103, 104, 105, 106, 107, 108, 111, 112, 113, 114, 115, 117, 118, 119, 121, 214, 223, 150],
                Action::Fatal,
            ),
        ];
        for (codes, action) in expect {
            for &c in codes {
                assert_eq!(classify(c), action, "code {c}");
            }
        }
        assert_eq!(classify_http(429), Action::Throttle);
        assert_eq!(classify_http(502), Action::Transient);
        assert_eq!(classify_http(404), Action::Fatal);
    }

    #[test]
    fn wire_messages_carry_the_vendor_prefix() {
        assert_eq!(wire_message(200), "【有效请求】查询成功");
        assert_eq!(wire_message(107), "【无效请求】被禁止的 IP 或者签名错误");
    }
}
