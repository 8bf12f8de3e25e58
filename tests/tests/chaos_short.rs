//! The chaos soak in CI size: the two master/slave pairs and the bridge of `scripts/chaos.sh`,
//! the same load and audit, with a fixed list of faults (a kill of B's master while A forwards
//! to it, a stepdown of A, a kill of A's master, a pause of B's master) instead of minutes of
//! random ones. Whatever the timing, no message confirmed by a RECEIPT may be lost and no
//! second delivery of a SEND may lack `redelivered:true`.

use mq_tests::chaos::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_faults_under_load_lose_no_receipted_message() -> anyhow::Result<()> {
    let summary = chaos::run(Config::short()).await?;
    println!("{}", serde_json::to_string(&summary)?);
    let a = &summary.audit;
    assert!(summary.violations.is_empty(), "{:?}", summary.violations);
    assert_eq!(a.lost, 0, "{:?}", a.lost_sample);
    assert_eq!(a.duplicates_unflagged, 0, "{:?}", a.unflagged_sample);
    assert_eq!(summary.faults_total, 4, "{:?}", summary.faults);
    assert!(a.receipted > 0 && a.consumed >= a.receipted, "{a:?}");
    assert!(
        summary.producer_reconnects > 0,
        "the kill and stepdown of A broke producer links"
    );
    Ok(())
}
