/// The generator is a contract: the example output of the README and the guides comes from
/// it, and a changed draw would silently change every simulated company.
/// This pins the first rows of one year as drawn (half-year rows, the top
/// five written as placeholders the way this company writes them, a named
/// customer with the KeyNo its name has everywhere), before the picture
/// addresses and extra fields a configured simulator lays over them.
#[test]
fn rows_are_what_they_always_were() {
    for (i, want) in GOLDEN.iter().enumerate() {
        let drawn = super::SimRow::new(7, 0, "金牌样本有限公司", "2022", i as u32);
        let got = serde_json::to_value(drawn).unwrap().to_string();
        assert_eq!(&got, want, "row {i}");
    }
}

const GOLDEN: &[&str] = &[
    r#"{"Year":"2022-06","Name":"客户1","ImageUrl":"","SalesAmount":"10354.65","SalesPercent":"81.93","Relationship":"","Source":"半年报"}"#,
    r#"{"Year":"2022","Name":"客户2","ImageUrl":"","SalesAmount":"12668.79","SalesPercent":"92.96%","Relationship":"","Source":"年报"}"#,
    r#"{"Year":"2022","Name":"客户3","ImageUrl":"","SalesAmount":"19881.66","SalesPercent":"17.05","Relationship":"","Source":"年报"}"#,
    r#"{"Year":"2022-06","Name":"客户4","ImageUrl":"","SalesAmount":"34454.54","SalesPercent":"-","Relationship":"关联方","Source":"半年报"}"#,
    r#"{"Year":"2022","Name":"客户5","ImageUrl":"","SalesAmount":"39859.09","SalesPercent":"21.39","Relationship":"","Source":"年报"}"#,
    r#"{"Year":"2022","Name":"北京宏远精密机械股份有限公司","KeyNo":"1eee7ceba7af8907aa37354fb4ecd9f5","ImageUrl":"https://qccdata.qichacha.com/AutoImage/1eee7ceba7af8907aa37354fb4ecd9f5.jpg?x-oss-process=image/resize,w_120","SalesAmount":"40176.36","SalesPercent":"-","Relationship":"","Source":"年报"}"#,
];
