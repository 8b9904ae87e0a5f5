//! Hostile answers: a body far past any page (a captive portal, a broken
//! gateway) is a transient error, is never stored, and costs no memory in
//! proportion to its size. In a file of its own (beside one small test), so
//! that this process's peak resident memory is the big test's.

mod common;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::*;

/// Peak resident memory of this process so far, MiB (Linux).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// 200 with ~330 MB of spaces, chunked; or with a 1.5 GB Content-Length.
async fn serve_huge_bodies() -> std::net::SocketAddr {
    let chunked = || async {
        let chunks = (0..5000).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 << 10])));
        Body::from_stream(futures_util::stream::iter(chunks))
    };
    let declared = || async {
        let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 << 10])));
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .header("content-length", "1500000000")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap()
    };
    // A real answer (201) cut into many small chunks, with 60 KB of padding
    // inside the JSON: read whole, it parses.
    let pieces = || async {
        let text = format!(
            r#"{{"OrderNumber":"CUSTOMER1","Paging":null,"Result":null,"Status":"201","Message":"{}查询无结果"}}"#,
            " ".repeat(60_000)
        );
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
            text.into_bytes().chunks(1000).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    };
    let app =
        Router::new().route("/chunked", get(chunked)).route("/declared", get(declared)).route("/pieces", get(pieces));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_far_larger_than_a_page_is_retried_then_deferred_and_memory_stays_flat() {
    let addr = serve_huge_bodies().await;
    let before = peak_rss_mib();
    for path in ["chunked", "declared"] {
        let h = Harness::default().await;
        h.write_keys(&["巨大应答测试有限公司".to_string()]);
        let mut fetch = fast_fetch();
        fetch.max_retries = 2;
        let mut opts = h.options(&fetch);
        opts.client.endpoint = reqwest::Url::parse(&format!("http://{addr}/{path}")).unwrap();
        let s = qcc_customers::pipeline::run(opts, tokio_util::sync::CancellationToken::new()).await.unwrap();
        assert_eq!(s.exit_code, 75, "{path}: {}", s.render());
        assert!(s.render().contains("deferred 1"), "{}", s.render());
        let conn = h.conn();
        let (state, message): (String, String) =
            conn.query_row("SELECT state, message FROM companies", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(state, "deferred");
        assert!(message.contains("body too large"), "{message}");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM api_calls WHERE error LIKE 'body too large%'"), 3);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM raw_pages"), 0, "never stored");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM customers"), 0);
    }
    let peak = peak_rss_mib();
    eprintln!("peak RSS {peak:.1} MiB (before the runs {before:.1} MiB); 3 bodies of ~330 MB were answered");
    assert!(peak < 150.0, "peak RSS {peak:.1} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_many_small_chunks_under_the_cap_is_read_whole() {
    let addr = serve_huge_bodies().await;
    let h = Harness::default().await;
    h.write_keys(&["分块应答测试有限公司".to_string()]);
    let mut opts = h.options(&fast_fetch());
    opts.client.endpoint = reqwest::Url::parse(&format!("http://{addr}/pieces")).unwrap();
    let s = qcc_customers::pipeline::run(opts, tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(s.exit_code, 0, "{}", s.render());
    let state: String = h.conn().query_row("SELECT state FROM companies", [], |r| r.get(0)).unwrap();
    assert_eq!(state, "no_result");
}
