//! Verifying a file: its blob is re-read off the writer, both checksums recomputed, and the outcome recorded
//! (`FileVerified`, ok or the mismatch); a blob that cannot be read is a failed verification, not an error.

use cairn_events::catalogue::FileVerified;
use cairn_events::Metadata;
use cairn_projections::files;
use uuid::Uuid;

use super::ServiceError;
use crate::commands::file::VerifyFile;
use crate::error::CommandError;
use crate::Cairn;

/// Verifies a file and records what was found.
pub async fn verify_file(cairn: &Cairn, file_id: Uuid, metadata: Metadata) -> Result<FileVerified, ServiceError> {
    let c = cairn.clone();
    let found = super::blocking(move || {
        let sha = {
            let conn = c.store().reader()?;
            files::get(&conn, &file_id.to_string())?
                .ok_or(CommandError::FileNotFound(file_id))?
                .checksum
        };
        Ok(c.blobs().digest(&sha).map_err(|e| format!("cannot read the blob: {e}")))
    })
    .await?;
    Ok(cairn.execute(VerifyFile { file_id, found }, metadata).await?.output)
}
