//! Undoing a command that failed after writing, without a savepoint per command (decision 0001): roll the
//! transaction back, begin again, and rewrite the events of the batch's earlier commands.

use super::row::write_row;
use super::WriterState;
use crate::error::StoreError;

/// Undoes a failed command's writes: rolls the transaction back, begins again, and rewrites the events the
/// batch's earlier commands appended (still in `pending`), applying the projections to them again.
pub(super) fn redo(state: &mut WriterState) -> Result<(), StoreError> {
    tracing::debug!(
        kept = state.pending.len(),
        "a command failed after writing; rewriting the batch without it"
    );
    state.conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")?;
    for event in &state.pending {
        write_row(&state.conn, &mut *state.projector, event, None)?;
    }
    Ok(())
}
