//! What a customer's name says about who it is: a name that identifies a
//! customer (normalised, so that spacing and full-width brackets do not
//! split one customer in two), or a placeholder that stands for one.
//!
//! Since 2012 an annual report is only encouraged to name its top five
//! customers; most write `客户一`, `客户A`, `第一名`, `单位1`, `前五名客户合计`
//! or even `一二三四五` instead. Such a name is no customer: two companies
//! that both write `客户一` do not share a customer.

/// The name as its identity: surrounding and inner white space dropped,
/// full-width brackets and letters as their ASCII forms, Latin letters in
/// upper case. `None` for a name that is empty once that is done.
pub fn normalised(name: &str) -> Option<String> {
    let out: String = name
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            // Full-width ASCII (！ to ～) to its ASCII form.
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Words that, around an ordinal, make a placeholder: `客户一`, `第一名客户`,
/// `单位1`, `A公司`.
const STAND_INS: &[&str] =
    &["销售客户", "客户", "客戶", "单位", "單位", "公司", "企业", "企業", "供应商", "关联方", "非关联方", "某"];

/// Ordinals: Chinese numerals, heavenly stems, and (after normalising)
/// ASCII letters and digits.
fn is_ordinal(c: char) -> bool {
    "一二三四五六七八九十零〇壹贰叁肆伍陆柒捌玖拾甲乙丙丁戊己庚辛壬癸".contains(c) || c.is_ascii_alphanumeric()
}

/// Whether a name stands in for an undisclosed customer rather than naming
/// one. `name` as received; an empty name is no placeholder (it is no name).
pub fn is_placeholder(name: &str) -> bool {
    let Some(n) = normalised(name) else { return false };
    // Brackets and separators around an ordinal say nothing: `客户(一)`, `客户-1`, `客户一#`.
    let n: String = n.chars().filter(|c| !"()[]【】<>《》-_#、.,:：;；“”\"'".contains(*c)).collect();
    // Totals and the rest: `前五名客户合计`, `前5名合计`, `其他客户`, `合计`.
    for total in ["合计", "小计", "总计", "合計", "總計"] {
        if n.ends_with(total) && n.chars().count() <= 10 {
            return true;
        }
    }
    if matches!(n.as_str(), "其他" | "其它" | "其他客户" | "其它客户" | "其他单位" | "未披露" | "不适用" | "无")
    {
        return true;
    }
    // Strip stand-in words and 第 … 名 around what is left, then see an ordinal.
    let mut core = n.as_str();
    let mut stripped = false;
    loop {
        let before = core;
        for w in STAND_INS.iter().chain(&["第", "名", "前五", "前5", "号", "號"]) {
            if let Some(rest) = core.strip_prefix(w) {
                core = rest;
                stripped = true;
            }
            if let Some(rest) = core.strip_suffix(w) {
                core = rest;
                stripped = true;
            }
        }
        if core == before {
            break;
        }
    }
    let count = core.chars().count();
    if count == 0 {
        return stripped;
    }
    if !core.chars().all(is_ordinal) {
        return false;
    }
    // `一二三四五`, `甲`: Chinese ordinals alone (up to a handful). ASCII alone
    // (`ABB`, `3M`) names a company unless a stand-in word came with it.
    let chinese = core.chars().all(|c| !c.is_ascii());
    (chinese && count <= 5) || (stripped && count <= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_reports_use_for_an_undisclosed_customer_are_placeholders() {
        for name in [
            "客户一",
            "客户A",
            "客户 B",
            "第一名",
            "第1名",
            "单位1",
            "前五名客户合计",
            "前5名合计",
            "一二三四五",
            "客户（一）",
            "客户(1)",
            "ＡＢ单位",
            "客户甲",
            "A公司",
            "某公司",
            "第二名客户",
            "其他客户",
            "合计",
            "销售客户三",
        ] {
            assert!(is_placeholder(name), "{name}");
        }
    }

    #[test]
    fn real_names_are_not_placeholders() {
        for name in [
            "国家电网有限公司",
            "中国石油化工股份有限公司",
            "ABB",
            "3M",
            "TCL科技集团股份有限公司",
            "Apple Inc.",
            "比亚迪股份有限公司",
            "客户服务中心有限公司",
            "一汽解放集团股份有限公司",
            "",
            "  ",
        ] {
            assert!(!is_placeholder(name), "{name}");
        }
    }

    #[test]
    fn spacing_and_full_width_forms_do_not_split_one_name() {
        assert_eq!(normalised(" 华为技术有限公司 "), normalised("华为技术有限公司"));
        assert_eq!(normalised("某某（中国）有限公司"), normalised("某某(中国)有限公司"));
        assert_eq!(normalised("ＡＢＣ　Ltd"), normalised("abc ltd"));
        assert_eq!(normalised(" \t"), None);
    }
}
