//! The window of stored jobs: what memory holds, and when it reads more.

use super::*;
use bytes::Bytes;
use mq_shared::destination::Destination;

fn job(id: &str, at: u64) -> Job {
    Job {
        id: Arc::from(id),
        at,
        spec: Spec {
            delay: 0,
            period: 0,
            repeat: 0,
            cron: String::new(),
        },
        msg: Arc::new(Message {
            id: Arc::from("ID:m"),
            destination: Destination::queue("q"),
            headers: Vec::new(),
            body: Bytes::new(),
            persistent: true,
            expires: 0,
            timestamp: 0,
        }),
    }
}

fn state() -> State {
    match Scheduler::new(true, true).state.into_inner() {
        Ok(s) => s,
        Err(e) => e.into_inner(),
    }
}

fn ids(st: &State) -> Vec<String> {
    st.stored.values().map(|j| j.id.to_string()).collect()
}

#[test]
fn nothing_is_held_before_the_first_read_which_asks_for_a_whole_window() {
    let mut st = state();
    st.insert_stored(job("a", 5), 4);
    assert!(
        st.stored.is_empty(),
        "the store has it; the first read brings it"
    );
    let Some((JobQuery::After { after: None, limit }, _)) = st.wants_load(4) else {
        panic!("no first read");
    };
    assert_eq!(limit, 4);
    assert!(st.wants_load(4).is_none(), "one read at a time");
    st.loaded(vec![job("a", 5)], None, 4);
    assert!(matches!(st.horizon, Horizon::All));
    assert!(st.wants_load(4).is_none(), "the store holds nothing more");
    st.insert_stored(job("b", 1), 4);
    assert_eq!(ids(&st), ["b", "a"]);
}

#[test]
fn past_the_window_the_latest_stay_in_the_store_and_are_read_back_in_order() {
    let mut st = state();
    st.loaded(Vec::new(), None, 4);
    for (i, at) in [50, 10, 40, 20, 30, 60].iter().enumerate() {
        st.insert_stored(job(&format!("j{i}"), *at), 4);
    }
    assert_eq!(
        ids(&st),
        ["j1", "j3", "j4", "j2"],
        "the first four by fire time"
    );
    assert!(matches!(&st.horizon, Horizon::Upto((40, id)) if &**id == "j2"));
    // Past the horizon: left to the store.
    st.insert_stored(job("late", 45), 4);
    assert_eq!(st.stored.len(), 4);
    let due = st.take_due(25, 10);
    assert_eq!(due.len(), 2);
    assert!(st.firing.contains_key("j1"));
    assert!(st.wants_load(4).is_none(), "half the window is still there");
    st.take_due(30, 10);
    let Some((
        JobQuery::After {
            after: Some((40, id)),
            limit,
        },
        _,
    )) = st.wants_load(4)
    else {
        panic!("no read after the horizon");
    };
    assert_eq!((&*id, limit), ("j2", 3));
    // It returns all it was asked for: there may be more.
    st.loaded(
        vec![job("late", 45), job("j0", 50), job("j5", 60)],
        Some((60, Arc::from("j5"))),
        4,
    );
    assert_eq!(ids(&st), ["j2", "late", "j0", "j5"]);
    assert!(matches!(&st.horizon, Horizon::Upto((60, _))));
}

#[test]
fn a_firing_job_is_not_read_back_twice_and_removal_finds_either_kind() {
    let mut st = state();
    st.loaded(Vec::new(), None, 8);
    st.insert_stored(job("s", 10), 8);
    st.insert_transient(job("t", 5));
    assert_eq!(st.next_at(), Some(5));
    let due = st.take_due(10, 10);
    assert_eq!(
        due.iter().map(|(j, s)| (&*j.id, *s)).collect::<Vec<_>>(),
        [("t", false), ("s", true)]
    );
    // A read served before the fire's commit still shows it at its old time.
    st.insert_stored(job("s", 10), 8);
    assert!(st.stored.is_empty());
    st.insert_stored(job("x", 20), 8);
    assert_eq!(
        st.remove(&Arc::from("x")).map(|(j, s)| (j.at, s)),
        Some((20, true))
    );
    assert!(st.remove(&Arc::from("x")).is_none());
    assert_eq!(st.next_at(), None);
}
