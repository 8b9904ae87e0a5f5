/// The generator is a contract: the README's example output comes from
/// it, and a changed draw would silently change every simulated company.
/// This pins the first rows of one year as drawn (a half-year row, a
/// missing name, a missing key number among them), before the picture
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
    r#"{"Year":"2022-06","Name":"杭州宏远建设工程股份有限公司","KeyNo":"be84bd87dca781358c6205cd4b513166","ImageUrl":"https://qccdata.qichacha.com/AutoImage/be84bd87dca781358c6205cd4b513166.jpg?x-oss-process=image/resize,w_120","SalesAmount":"10354.65","SalesPercent":"81.93","Relationship":"","Source":"半年报"}"#,
    r#"{"Year":"2022","Name":"武汉新航能源股份有限公司","KeyNo":"7c34e0a463a4e02a731a3105d683a898","ImageUrl":"https://qccdata.qichacha.com/AutoImage/7c34e0a463a4e02a731a3105d683a898.jpg?x-oss-process=image/resize,w_120","SalesAmount":"12668.79","SalesPercent":"92.96%","Relationship":"","Source":"年报"}"#,
    r#"{"Year":"2022","KeyNo":"871239572eb266e1d58cc797f2c2d005","ImageUrl":"https://qccdata.qichacha.com/AutoImage/871239572eb266e1d58cc797f2c2d005.jpg?x-oss-process=image/resize,w_120","SalesAmount":"19881.66","SalesPercent":"17.05","Relationship":"","Source":"年报"}"#,
    r#"{"Year":"2022-06","Name":"宁波海纳医药有限公司","ImageUrl":"https://qccdata.qichacha.com/AutoImage/db90e66b2018aeecac5ab324ba21c90f.jpg?x-oss-process=image/resize,w_120","SalesAmount":"34454.54","SalesPercent":"-","Relationship":"关联方","Source":"半年报"}"#,
    r#"{"Year":"2022","Name":"厦门海纳信息技术股份有限公司","KeyNo":"5344d252f4dfc43393a989c2b24a8730","ImageUrl":"https://qccdata.qichacha.com/AutoImage/5344d252f4dfc43393a989c2b24a8730.jpg?x-oss-process=image/resize,w_120","SalesAmount":"39859.09","SalesPercent":"21.39","Relationship":"","Source":"年报"}"#,
    r#"{"Year":"2022","Name":"北京宏远精密机械股份有限公司","KeyNo":"cecaef89e5e42eac2b468c4ae7fb2e73","ImageUrl":"https://qccdata.qichacha.com/AutoImage/cecaef89e5e42eac2b468c4ae7fb2e73.jpg?x-oss-process=image/resize,w_120","SalesAmount":"40176.36","SalesPercent":"-","Relationship":"","Source":"年报"}"#,
];
