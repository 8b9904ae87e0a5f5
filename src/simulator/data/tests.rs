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

#[test]
fn own_names_give_each_company_its_customers_and_keep_placeholders() {
    let text = |f: &Field| match f {
        Field::Text(t) => Some(t.clone()),
        Field::Static(t) if !t.is_empty() && *t != "-" => Some(t.to_string()),
        _ => None,
    };
    // Each company's names and KeyNos of named customers, own or not.
    let customers = |key: &str, own: bool| {
        let mut names = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for i in 0..300 {
            let shared = SimRow::new(5, 0, key, "2023", i);
            let row = SimRow::new(5, 0, key, "2023", i).own_names(own, 5, key);
            if row.placeholder {
                assert_eq!(text(&row.name), text(&shared.name), "a placeholder stays as it is");
                continue;
            }
            names.extend(text(&row.name));
            keys.extend(text(&row.key_no));
        }
        (names, keys)
    };
    let (a, b) = ("甲独有客户有限公司", "乙独有客户有限公司");
    let (shared_a, shared_b) = (customers(a, false), customers(b, false));
    assert!(!shared_a.0.is_disjoint(&shared_b.0), "names repeat across companies");
    let (own_a, own_b) = (customers(a, true), customers(b, true));
    assert!(own_a.0.is_disjoint(&own_b.0), "{:?}", own_a.0.intersection(&own_b.0).collect::<Vec<_>>());
    assert!(own_a.1.is_disjoint(&own_b.1));
    assert_eq!(own_a.0.len(), shared_a.0.len(), "a name of the company's stays one name");
}
