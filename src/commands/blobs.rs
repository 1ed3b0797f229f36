//! Purging retained content: content no file holds, kept since a deletion, removed once its retention ends.

use cairn_events::catalogue::{BlobsPurged, PurgedBlob};
use cairn_events::ExpectedVersion;

use super::{Command, Decision, State};
use crate::error::CommandError;

/// Removes the given contents, those still retained (a file may hold one again since it was chosen), recording
/// `BlobsPurged` with `reason`; the blobs go after the commit. Answers the bytes purged.
#[derive(Debug, Clone)]
pub struct PurgeBlobs {
    pub sha256s: Vec<String>,
    pub reason: String,
}

impl Command for PurgeBlobs {
    type Output = u64;

    fn decide(self, state: &dyn State) -> Result<Decision<u64>, CommandError> {
        let mut blobs = Vec::new();
        for sha256 in self.sha256s {
            if blobs.iter().any(|b: &PurgedBlob| b.sha256 == sha256) || state.holders(&sha256)? > 0 {
                continue;
            }
            if let Some(size) = state.retained(&sha256)? {
                blobs.push(PurgedBlob { sha256, size });
            }
        }
        let bytes = blobs.iter().map(|b| b.size).sum();
        if blobs.is_empty() {
            return Ok(Decision::new(0));
        }
        let mut decision = Decision::new(bytes);
        decision.release_blobs = blobs.iter().map(|b| b.sha256.clone()).collect();
        Ok(decision.event(
            BlobsPurged {
                blobs,
                reason: self.reason,
            },
            ExpectedVersion::Any,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::file::DeleteFile;
    use crate::commands::testing::{given, registered, stored};
    use cairn_events::catalogue::FileDeleted;
    use uuid::Uuid;

    fn deleted(file: Uuid, client: Uuid, sha: &str, size: u64) -> cairn_events::DomainEvent {
        FileDeleted {
            file_id: file,
            client_id: client,
            sha256: sha.into(),
            size,
            reason: "admin".into(),
            run_id: None,
        }
        .into()
    }

    #[test]
    fn a_deletion_keeps_the_content_unless_told_not_to_and_then_purges_only_what_no_file_holds() {
        let (a, f1, f2) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let history = vec![registered(a, "alpha"), stored(f1, a, "s1", 3), stored(f2, a, "s1", 3)];
        let kept = given(history.clone())
            .when(DeleteFile {
                file_id: f1,
                expected_version: None,
                retain: true,
                run_id: None,
                owner: None,
            })
            .then_expect_count(1);
        assert!(kept.release_blobs.is_empty());
        // Another file still holds s1: nothing to purge even without retention.
        let shared = given(history.clone())
            .when(DeleteFile {
                file_id: f1,
                expected_version: None,
                retain: false,
                run_id: None,
                owner: None,
            })
            .then_expect_count(1);
        assert!(shared.release_blobs.is_empty());
        let mut last = history;
        last.push(deleted(f1, a, "s1", 3));
        let purged = given(last)
            .when(DeleteFile {
                file_id: f2,
                expected_version: None,
                retain: false,
                run_id: None,
                owner: None,
            })
            .then_expect_count(2);
        assert_eq!(purged.release_blobs, ["s1"]);
        assert!(
            matches!(&purged.events[1].0, cairn_events::DomainEvent::BlobsPurged(p) if p.reason == "not retained" && p.blobs[0].size == 3)
        );
    }

    #[test]
    fn a_purge_takes_only_content_still_retained_and_held_by_no_file() {
        let (a, f1, f2) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let purge = |shas: &[&str]| PurgeBlobs {
            sha256s: shas.iter().map(|s| (*s).to_owned()).collect(),
            reason: "retention".into(),
        };
        let history = vec![
            registered(a, "alpha"),
            stored(f1, a, "s1", 3),
            deleted(f1, a, "s1", 3),
            stored(f2, a, "s2", 5),
        ];
        given(history.clone())
            .when(purge(&["s1", "s1", "s2", "unknown"]))
            .then_expect(vec![BlobsPurged {
                blobs: vec![PurgedBlob {
                    sha256: "s1".into(),
                    size: 3,
                }],
                reason: "retention".into(),
            }
            .into()]);
        // Stored again since it was chosen: held, so kept.
        let mut again = history;
        again.push(stored(Uuid::now_v7(), a, "s1", 3));
        given(again).when(purge(&["s1"])).then_expect(vec![]);
    }
}
