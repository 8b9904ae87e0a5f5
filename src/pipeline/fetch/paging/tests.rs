use super::*;

fn year(total: Option<u64>, pages_total: Option<u32>, stored: StoredPages) -> YearPaging {
    let task = YearTask { year: "2024".into(), stored, pages_total, total_records: total };
    YearPaging::new(&task, 50)
}

fn pages(prefix: u32, beyond: &[u32]) -> StoredPages {
    StoredPages { prefix, beyond: beyond.iter().copied().collect() }
}

#[test]
fn a_fresh_year_asks_page_1_alone_then_every_other_page_at_once() {
    let mut y = year(None, None, StoredPages::default());
    assert_eq!(y.next_pages(), vec![1]);
    assert_eq!(y.next_pages(), Vec::<u32>::new(), "page 1 is asked once");
    let c = y.page_arrived(1, Some(180), 50);
    assert_eq!((c.total_records, c.pages_total, c.state), (180, 4, YearState::Partial));
    assert_eq!(y.next_pages(), vec![2, 3, 4]);
}

#[test]
fn pages_arriving_out_of_order_complete_the_year_with_the_last_missing_one() {
    let mut y = year(None, None, StoredPages::default());
    y.next_pages();
    y.page_arrived(1, Some(180), 50);
    y.next_pages();
    let c = y.page_arrived(4, Some(180), 30);
    assert_eq!(c.state, YearState::Partial);
    assert_eq!(c.stored, pages(1, &[4]), "page 4 is stored beyond the prefix");
    assert_eq!(y.page_arrived(3, Some(180), 50).state, YearState::Partial);
    let c = y.page_arrived(2, Some(180), 50);
    assert_eq!(c.state, YearState::Complete);
    assert_eq!(c.stored, pages(4, &[]));
    assert!(y.is_finished());
    assert!(y.is_past_end(2), "nothing more is stored once the year is finished");
}

#[test]
fn a_201_past_page_1_ends_the_year_at_the_page_before_once_the_lower_pages_are_in() {
    let mut y = year(None, None, StoredPages::default());
    y.next_pages();
    y.page_arrived(1, Some(200), 50);
    assert_eq!(y.next_pages(), vec![2, 3, 4]);
    // Page 3 says there are no more rows while page 2 is still in flight.
    assert_eq!(y.no_more_rows(3, YearState::Complete), NoMoreRows::Waiting);
    assert!(y.is_past_end(4), "a 200 for page 4 brings rows past the end");
    assert!(!y.is_past_end(2));
    let c = y.page_arrived(2, Some(200), 50);
    assert_eq!((c.state, c.pages_total), (YearState::Complete, 2));
    assert_eq!(y.no_more_rows(4, YearState::Complete), NoMoreRows::Late, "page 4's 201 comes after the end");
}

#[test]
fn a_201_on_page_1_ends_the_year_with_no_rows() {
    let mut y = year(None, None, StoredPages::default());
    y.next_pages();
    let end = y.no_more_rows(1, YearState::Complete);
    assert_eq!(end, NoMoreRows::Ended { state: YearState::Complete, total_records: 0, pages: 0 });
    assert!(y.is_finished());
}

#[test]
fn a_207_past_the_ceiling_ends_the_year_truncated_at_the_lowest_such_page() {
    let mut y = year(None, None, StoredPages::default());
    y.next_pages();
    y.page_arrived(1, Some(120), 50);
    assert_eq!(y.next_pages(), vec![2, 3]);
    y.page_arrived(2, Some(120), 50);
    let end = y.no_more_rows(3, YearState::Truncated);
    assert_eq!(end, NoMoreRows::Ended { state: YearState::Truncated, total_records: 120, pages: 2 });
}

#[test]
fn a_year_past_5000_entries_is_truncated_when_its_last_allowed_page_arrives() {
    let mut y = year(None, None, StoredPages::default());
    y.next_pages();
    let c = y.page_arrived(1, Some(6000), 50);
    assert_eq!(c.pages_total, 100, "the API serves 5,000 entries: 100 pages of 50");
    let rest = y.next_pages();
    assert_eq!(rest.len(), 99);
    let mut last = None;
    for p in rest {
        last = Some(y.page_arrived(p, Some(6000), 50));
    }
    assert_eq!(last.map(|c| c.state), Some(YearState::Truncated));
}

#[test]
fn a_resume_with_stored_pages_beyond_the_prefix_asks_only_the_missing_ones() {
    let mut y = year(Some(250), Some(5), pages(1, &[3, 5]));
    assert_eq!(y.already_stored(), None);
    assert_eq!(y.next_pages(), vec![2, 4], "pages 3 and 5 are paid for already");
    y.page_arrived(4, None, 50);
    let c = y.page_arrived(2, None, 50);
    assert_eq!((c.state, c.total_records, c.pages_total), (YearState::Complete, 250, 5));
}

#[test]
fn a_resume_whose_every_page_is_stored_ends_the_year_without_a_call() {
    let mut y = year(Some(120), Some(3), pages(3, &[]));
    assert_eq!(y.already_stored(), Some((YearState::Complete, 120, 3)));
    assert!(y.next_pages().is_empty());
}

#[test]
fn without_total_records_a_short_page_is_the_last_and_a_full_one_asks_the_next() {
    let mut y = year(None, None, StoredPages::default());
    y.next_pages();
    let c = y.page_arrived(1, None, 50);
    assert_eq!((c.state, c.pages_total), (YearState::Partial, 2));
    assert_eq!(y.next_pages(), vec![2]);
    let c = y.page_arrived(2, None, 7);
    assert_eq!((c.state, c.total_records, c.pages_total), (YearState::Complete, 57, 2));
}

#[test]
fn the_worst_unit_end_decides_the_company() {
    use UnitEnd::*;
    assert_eq!(Done.worst(Unfinished), Unfinished);
    assert_eq!(Unfinished.worst(CompanyFinal), CompanyFinal);
    assert_eq!(Done.worst(Contradicted), Done);
}

fn listing(pages: u32, total: u64) -> ListingPaging {
    ListingPaging::new(50, pages, Some(total), StoredPages { prefix: 1, ..Default::default() }, 50)
}

#[test]
fn a_listing_whose_pages_add_up_is_complete_when_its_last_page_arrives_in_any_order() {
    let mut l = listing(3, 120);
    assert_eq!(l.start(), Ok(vec![2, 3]));
    let c = l.page_arrived(3, Some(120), 20, None);
    assert_eq!((c.state, c.problem.as_deref()), (YearState::Partial, None));
    let c = l.page_arrived(2, Some(120), 50, None);
    assert_eq!((c.state, c.unit_rows, c.problem), (YearState::Complete, 120, None));
}

#[test]
fn a_short_page_before_the_last_is_a_contradiction() {
    let mut l = listing(3, 120);
    let c = l.page_arrived(2, Some(120), 49, None);
    assert_eq!(c.problem.as_deref(), Some("listing page 2 of 3 held 49 rows, not 50"));
    assert_eq!(c.state, YearState::Partial);
}

#[test]
fn a_row_of_a_year_not_in_year_list_and_a_changed_total_are_contradictions() {
    let mut l = listing(3, 120);
    let c = l.page_arrived(2, Some(120), 50, Some("2019"));
    assert!(c.problem.unwrap().contains("year \"2019\", which is not in YearList"));
    let mut l = listing(3, 120);
    let c = l.page_arrived(2, Some(130), 50, None);
    assert_eq!(c.problem.as_deref(), Some("TotalRecords went from 120 to 130 between listing pages"));
}

#[test]
fn pages_that_do_not_add_up_to_total_records_are_a_contradiction_on_the_last_one() {
    let mut l = listing(2, 100);
    let c = l.page_arrived(2, None, 40, None);
    assert_eq!(c.problem.as_deref(), Some("the listing's 2 pages held 90 rows, TotalRecords says 100"));
}

#[test]
fn a_listing_without_total_records_or_already_covered_is_refused_before_a_call() {
    let l = ListingPaging::new(50, 2, None, StoredPages::default(), 0);
    assert_eq!(l.start(), Err("the listing has no TotalRecords".into()));
    let l = ListingPaging::new(50, 2, Some(100), pages(2, &[]), 90);
    assert_eq!(l.start(), Err("the listing's 2 pages held 90 rows, TotalRecords says 100".into()));
    assert_eq!(listing(3, 120).no_rows(2, "201"), "listing page 2 of 3 answered 201");
}
