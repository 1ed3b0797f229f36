//! Undoing a command that failed after writing, without a savepoint per command (decision 0001): roll the
//! transaction back, begin again, and rewrite the events of the batch's earlier commands.

use super::row::write_row;
use super::WriterState;
use crate::error::StoreError;
use crate::merkle::Frontier;

/// Undoes a failed command's writes: rolls the transaction back, begins again, and rewrites the events the
/// batch's earlier commands appended (still in `pending`), applying the projections to them again and pushing
/// their leaves again onto the tree as it was when the batch began (`tree_at_start`).
pub(super) fn redo(state: &mut WriterState, tree_at_start: &Option<Frontier>) -> Result<(), StoreError> {
    tracing::debug!(
        kept = state.pending.len(),
        "a command failed after writing; rewriting the batch without it"
    );
    state.conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")?;
    state.tree.clone_from(tree_at_start);
    for event in &state.pending {
        write_row(&state.conn, &mut *state.projector, state.tree.as_mut(), event, None)?;
    }
    Ok(())
}
