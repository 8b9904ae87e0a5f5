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
