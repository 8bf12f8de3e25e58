//! Unit tests of the journal file: records, resets, and what failed appends leave.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::store::file::faults::Faults;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn put(seq: u64, id: Option<&str>) -> Op {
    Op::Put {
        queue: Arc::from("q"),
        rank: crate::store::DEFAULT_RANK,
        seq,
        data: Bytes::from(vec![seq as u8; 100]),
        dedup: id.map(Arc::from),
    }
}

fn open_all(
    path: &Path,
    wrap: Option<&WrapFile>,
    limits: Limits,
) -> Result<(Journal, Vec<Record>), Cause> {
    let mut recs = Vec::new();
    let j = Journal::open(path, wrap, limits, |r| {
        recs.push(r);
        Ok(())
    })?;
    Ok((j, recs))
}

fn lsns(recs: &[Record]) -> Vec<u64> {
    recs.iter().map(|r| r.lsn).collect()
}

/// Small limits: 4 KiB chunks, a 64 KiB hard limit.
fn small() -> Limits {
    Limits::small(64 * 1024)
}

#[test]
fn records_round_trip_and_a_torn_tail_is_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let (mut j, recs) = open_all(&path, None, Limits::default())?;
    assert!(recs.is_empty());
    let a = put(1, Some("id-1"));
    let b = Op::Delete {
        queue: Arc::from("q"),
        rank: 0,
        seq: 1,
        size: 0,
    };
    j.append(1, &[&a, &b]).map_err(|e| format!("{e:?}"))?;
    j.append(2, &[&put(2, None)])
        .map_err(|e| format!("{e:?}"))?;
    let good = j.len();
    drop(j);
    // A crash in the middle of the third record.
    let f = OpenOptions::new().write(true).open(&path)?;
    std::os::unix::fs::FileExt::write_all_at(&f, &[200, 0, 0, 0, 1, 2, 3], good)?;
    drop(f);
    let (j, recs) = open_all(&path, None, Limits::default())?;
    assert_eq!(j.len(), good, "the torn record is not part of the journal");
    assert_eq!(lsns(&recs), vec![1, 2]);
    assert_eq!(recs[0].ops.len(), 2);
    assert!(
        matches!(&recs[0].ops[0], Op::Put { seq: 1, dedup: Some(id), data, .. } if &**id == "id-1" && data.len() == 100)
    );
    assert!(matches!(&recs[1].ops[0], Op::Put { dedup: None, .. }));
    Ok(())
}

#[test]
fn records_after_a_reset_start_at_the_beginning() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let (mut j, _) = open_all(&path, None, Limits::default())?;
    for lsn in 1..=5 {
        j.append(lsn, &[&put(lsn, None)])
            .map_err(|e| format!("{e:?}"))?;
    }
    j.reset();
    j.append(6, &[&put(6, None)])
        .map_err(|e| format!("{e:?}"))?;
    drop(j);
    // The old records after the new one carry lower LSNs: they end the journal.
    let (j, recs) = open_all(&path, None, Limits::default())?;
    assert_eq!(lsns(&recs), vec![6]);
    assert!(j.len() < std::fs::metadata(&path)?.len(), "preallocated");
    Ok(())
}

#[test]
fn a_corrupted_record_ends_the_journal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let (mut j, _) = open_all(&path, None, Limits::default())?;
    j.append(1, &[&put(1, None)])
        .map_err(|e| format!("{e:?}"))?;
    let first = j.len() as usize;
    j.append(2, &[&put(2, None)])
        .map_err(|e| format!("{e:?}"))?;
    drop(j);
    let mut bytes = std::fs::read(&path)?;
    bytes[first + 20] ^= 0xff;
    std::fs::write(&path, &bytes)?;
    let (_, recs) = open_all(&path, None, Limits::default())?;
    assert_eq!(recs.len(), 1);
    Ok(())
}

#[test]
fn a_header_claiming_more_than_the_file_holds_ends_the_journal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    // A length of nearly 4 GiB in a 16-byte file: nothing that large is read or allocated.
    std::fs::write(
        &path,
        [0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
    )?;
    let (j, recs) = open_all(&path, None, Limits::default())?;
    assert!(recs.is_empty());
    assert_eq!(j.len(), 0);
    Ok(())
}

#[test]
fn a_failed_preallocation_gives_its_space_back_and_the_next_record_lands_in_place() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let faults = Faults::new();
    let wrap = faults.wrap();
    let (mut j, _) = open_all(&path, Some(&wrap), small())?;
    assert_eq!(j.allocated(), 4096);
    faults.limit_size(Some(6000));
    let big = Op::Put {
        queue: Arc::from("q"),
        rank: crate::store::DEFAULT_RANK,
        seq: 1,
        data: Bytes::from(vec![1u8; 6000]),
        dedup: None,
    };
    assert!(matches!(j.append(1, &[&big]), Err(AppendError::Io(_))));
    assert_eq!(
        (j.len(), j.allocated()),
        (0, 4096),
        "the state is as before"
    );
    assert_eq!(
        std::fs::metadata(&path)?.len(),
        4096,
        "the space is given back"
    );
    j.append(1, &[&put(2, None)])
        .map_err(|e| format!("{e:?}"))?;
    drop(j);
    let (_, recs) = open_all(&path, None, small())?;
    assert_eq!(lsns(&recs), vec![1]);
    assert!(matches!(&recs[0].ops[0], Op::Put { seq: 2, .. }));
    Ok(())
}

#[test]
fn a_record_whose_sync_failed_is_undone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let faults = Faults::new();
    let wrap = faults.wrap();
    let (mut j, _) = open_all(&path, Some(&wrap), small())?;
    j.append(1, &[&put(1, None)])
        .map_err(|e| format!("{e:?}"))?;
    let len = j.len();
    faults.fail_syncs(1);
    assert!(matches!(
        j.append(2, &[&put(2, None)]),
        Err(AppendError::Io(_))
    ));
    assert_eq!(j.len(), len);
    assert!(!j.needs_undo());
    drop(j);
    // The record's bytes reached the file, but its header is zeros: recovery stops there.
    let (_, recs) = open_all(&path, None, small())?;
    assert_eq!(lsns(&recs), vec![1]);
    Ok(())
}

#[test]
fn a_record_that_cannot_be_undone_blocks_appends_until_it_is() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let faults = Faults::new();
    let wrap = faults.wrap();
    let (mut j, _) = open_all(&path, Some(&wrap), small())?;
    faults.fail_syncs(usize::MAX);
    assert!(matches!(
        j.append(1, &[&put(1, None)]),
        Err(AppendError::Undo { .. })
    ));
    assert!(j.needs_undo());
    assert!(matches!(
        j.append(2, &[&put(2, None)]),
        Err(AppendError::Refused(_))
    ));
    faults.fail_syncs(0);
    j.append(3, &[&put(3, None)])
        .map_err(|e| format!("{e:?}"))?;
    assert!(!j.needs_undo());
    drop(j);
    let (_, recs) = open_all(&path, None, small())?;
    assert_eq!(lsns(&recs), vec![3]);
    Ok(())
}

#[test]
fn the_journal_stops_at_its_hard_limit_and_a_reset_shrinks_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal");
    let limits = small();
    let (mut j, _) = open_all(&path, None, limits)?;
    let mut lsn = 0;
    let full = loop {
        lsn += 1;
        match j.append(lsn, &[&put(lsn, None)]) {
            Ok(()) => assert!(lsn < 1000, "the journal never filled up"),
            Err(e) => break e,
        }
    };
    assert!(matches!(full, AppendError::Full { limit } if limit == limits.journal_hard));
    assert!(j.len() <= limits.journal_hard);
    assert!(std::fs::metadata(&path)?.len() <= limits.journal_hard);
    // A record that could never fit is refused as too long, not as full.
    let huge = Op::Put {
        queue: Arc::from("q"),
        rank: crate::store::DEFAULT_RANK,
        seq: 1,
        data: Bytes::from(vec![0u8; limits.journal_hard as usize]),
        dedup: None,
    };
    j.reset();
    assert!(matches!(
        j.append(lsn, &[&huge]),
        Err(AppendError::TooLong(_))
    ));
    assert!(
        std::fs::metadata(&path)?.len() <= limits.keep(),
        "the reset gave back what the burst allocated beyond {}",
        limits.keep()
    );
    j.append(lsn, &[&put(lsn, None)])
        .map_err(|e| format!("{e:?}"))?;
    Ok(())
}
