//! The Merkle tree's proofs, checked by a second implementation written apart from ours (`ct-merkle`), for every
//! size up to a few hundred and at random in a tree of a million leaves; and the tree the writer keeps.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

use cairn_events::catalogue::LogRecorded;
use cairn_events::merkle::store::{self, Stored};
use cairn_events::merkle::{self, Frontier, Hash};
use cairn_events::{
    DomainEvent, EventStore, ExpectedVersion, Metadata, NewEvent, NoProjections, StoreError, StoreOptions,
};
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;
use sha2::Sha256;

/// A log of `leaves` events, reduced to what the tree reads (each event's hash), with its tree.
fn tree_of(leaves: u64) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE events (position INTEGER PRIMARY KEY, hash TEXT NOT NULL);
         CREATE TABLE merkle_nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
         PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;",
    )
    .unwrap();
    let mut frontier = Frontier::default();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut insert = conn
            .prepare("INSERT INTO events (position, hash) VALUES (?1, ?2)")
            .unwrap();
        for i in 0..leaves {
            insert
                .execute(rusqlite::params![i as i64 + 1, hex::encode(data(i))])
                .unwrap();
            store::append(&conn, &mut frontier, &data(i)).unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    conn
}

fn data(i: u64) -> Hash {
    let mut h = [0xa5u8; 32];
    h[..8].copy_from_slice(&i.to_be_bytes());
    h
}

fn theirs(root: &Hash, size: u64) -> RootHash<Sha256> {
    RootHash::new((*root).into(), size)
}

fn digests(hashes: &[Hash]) -> Vec<sha2::digest::Output<Sha256>> {
    hashes.iter().map(|h| (*h).into()).collect()
}

/// Checks one inclusion proof with ct-merkle, and that it fails for the leaf beside it.
fn check_inclusion(nodes: &mut Stored<'_>, index: u64, size: u64, root: &Hash) {
    let ours = merkle::inclusion_proof(nodes, index, size).unwrap();
    let proof = InclusionProof::<Sha256>::from_digests(digests(&ours).iter());
    theirs(root, size)
        .verify_inclusion(&data(index), index, &proof)
        .unwrap_or_else(|e| panic!("leaf {index} of {size}: {e:?}"));
    if size > 1 {
        assert!(theirs(root, size)
            .verify_inclusion(&data(index ^ 1), index, &proof)
            .is_err());
    }
    merkle::verify_inclusion(index, size, &merkle::leaf_hash(&data(index)), &ours, root).unwrap();
}

fn check_consistency(nodes: &mut Stored<'_>, from: u64, to: u64, roots: (&Hash, &Hash)) {
    let ours = merkle::consistency_proof(nodes, from, to).unwrap();
    let proof = ConsistencyProof::<Sha256>::from_digests(digests(&ours).iter());
    theirs(roots.1, to)
        .verify_consistency(&theirs(roots.0, from), &proof)
        .unwrap_or_else(|e| panic!("{from} → {to}: {e:?}"));
    merkle::verify_consistency(from, to, &ours, roots.0, roots.1).unwrap();
}

#[test]
fn every_proof_of_every_size_up_to_three_hundred_holds_for_a_second_implementation() {
    let sizes = 300u64;
    let conn = tree_of(sizes);
    let mut nodes = Stored::new(&conn);
    let roots: Vec<Hash> = (0..=sizes).map(|n| merkle::root(&mut nodes, n).unwrap()).collect();
    // ct-merkle's own tree agrees on every root.
    let mut reference = ct_merkle::mem_backed_tree::MemoryBackedTree::<Sha256, Hash>::new();
    for n in 1..=sizes {
        reference.push(data(n - 1));
        assert_eq!(reference.root().as_bytes().as_slice(), &roots[n as usize], "size {n}");
    }
    for size in 1..=sizes {
        for index in 0..size {
            check_inclusion(&mut nodes, index, size, &roots[size as usize]);
        }
        for from in 1..size {
            check_consistency(&mut nodes, from, size, (&roots[from as usize], &roots[size as usize]));
        }
    }
}

#[test]
fn random_proofs_in_a_tree_of_a_million_leaves_hold_for_a_second_implementation() {
    let size = 1_000_000u64;
    let conn = tree_of(size);
    let mut nodes = Stored::new(&conn);
    assert_eq!(store::size(&conn).unwrap(), size);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(13);
    let root = merkle::root(&mut nodes, size).unwrap();
    for _ in 0..200 {
        let index = rng.random_range(0..size);
        check_inclusion(&mut nodes, index, size, &root);
        let smaller = rng.random_range(index + 1..=size);
        let smaller_root = merkle::root(&mut nodes, smaller).unwrap();
        check_inclusion(&mut nodes, index, smaller, &smaller_root);
        let from = rng.random_range(1..=smaller);
        let from_root = merkle::root(&mut nodes, from).unwrap();
        check_consistency(&mut nodes, from, smaller, (&from_root, &smaller_root));
        check_consistency(&mut nodes, from, size, (&from_root, &root));
    }
    // The edges: the first and last leaf, sizes one apart, a power of two and one past it.
    for (index, n) in [(0, size), (size - 1, size), (524_287, 524_288), (524_288, 524_289)] {
        let r = merkle::root(&mut nodes, n).unwrap();
        check_inclusion(&mut nodes, index, n, &r);
    }
    for (from, to) in [(size - 1, size), (1, size), (524_288, size), (524_287, 524_289)] {
        let (a, b) = (
            merkle::root(&mut nodes, from).unwrap(),
            merkle::root(&mut nodes, to).unwrap(),
        );
        check_consistency(&mut nodes, from, to, (&a, &b));
    }
}

fn log_event(i: usize) -> NewEvent {
    let event = DomainEvent::from(LogRecorded {
        level: "info".into(),
        message: format!("line {i}"),
        source: "test".into(),
        client_id: None,
        file_id: None,
    });
    NewEvent::from_domain(&event, &Metadata::system())
}

#[test]
fn the_writer_keeps_the_tree_of_its_log_through_failed_commands_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairn.db");
    let store = EventStore::open(&path, StoreOptions::default(), Box::new(NoProjections)).unwrap();
    let mut waiting = Vec::new();
    for i in 0..600 {
        // Every seventh command writes and then fails: its batch is rewritten without it, tree included.
        let fails = i % 7 == 3;
        waiting.push(
            store
                .writer()
                .submit(move |unit| -> Result<(), StoreError> {
                    unit.append("log", ExpectedVersion::Any, vec![log_event(i)])
                        .map_err(|e| StoreError::Commit(e.to_string()))?;
                    match fails {
                        true => Err(StoreError::Commit("refused after writing".into())),
                        false => Ok(()),
                    }
                })
                .unwrap(),
        );
    }
    let failed = waiting
        .into_iter()
        .map(|rx| rx.blocking_recv().unwrap())
        .filter(Result::is_err)
        .count();
    assert_eq!(failed, 86);
    let head = store.head();
    assert_eq!(head, 600 - 86);
    let check = store::check(&store.reader().unwrap(), head).unwrap();
    assert_eq!(check.first_bad, None);
    assert_eq!(check.leaves, head as u64);
    store.close();

    // A writer that starts on a log whose tree was lost builds it again, equal to the one it kept.
    let conn = Connection::open(&path).unwrap();
    let kept = store::check(&conn, head).unwrap().root;
    // The node over the first 512 leaves gone: the right edge is not there to start from.
    assert_eq!(
        conn.execute("DELETE FROM merkle_nodes WHERE id = 9 << 48", []).unwrap(),
        1
    );
    drop(conn);
    let store = EventStore::open(&path, StoreOptions::default(), Box::new(NoProjections)).unwrap();
    let conn = store.reader().unwrap();
    let again = store::check(&conn, head).unwrap();
    assert_eq!(again.first_bad, None, "{again:?}");
    assert_eq!(again.root, kept);
}
