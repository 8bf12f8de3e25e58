//! Master/slave on a shared data directory: one master, the other waits as slave and takes
//! over with the persistent messages when the master dies.

use mq_shared::api::Role;
use mq_tests::client::AckMode;
use mq_tests::*;

#[tokio::test]
async fn slave_takes_over_with_the_messages_when_the_master_is_killed() {
    let mut group = HaGroup::start("ms", 2, &[]);
    assert_eq!(group.master(SOON), 0);
    let slave = &group.nodes[1];
    assert_eq!(slave.role(), Role::Slave);
    assert!(slave.ready().transports.is_empty(), "{:?}", slave.ready());
    let slave_admin = slave.admin();
    assert_eq!(slave_admin.get("/readyz").await.status, 503);
    assert_eq!(slave_admin.role().await, Role::Slave);

    let mut c = connect(&group.nodes[0].stomp_addr()).await;
    for i in 0..50 {
        send_persistent(&mut c, "/queue/ha", format!("m{i}")).await;
    }
    drop(c);

    group.kill(0);
    let ev = group.nodes[1].wait_event(Role::Master, SOON);
    assert_eq!(ev.transports.len(), 1, "{ev:?}");
    assert_eq!(group.master(SOON), 1);
    assert_eq!(slave_admin.get("/readyz").await.status, 200);
    let mut c = connect(&group.nodes[1].stomp_addr()).await;
    subscribe(&mut c, "/queue/ha", "s", AckMode::Auto).await;
    let got = drain(&mut c, 50, SOON).await;
    let want: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(&got), want);
    expect_nothing(&mut c, QUIET).await;

    // The old master comes back as a slave.
    group.restart(0);
    assert_eq!(group.nodes[0].role(), Role::Slave);
    assert_eq!(group.master(SOON), 1);
    let status = group.nodes[0].terminate();
    assert!(status.success(), "a slave stopped with {status}");
}
