//! The batching step shared by the tasks that combine concurrent store calls into one
//! statement or command (PostgreSQL's reader, Redis's reader and compare-and-set task).
//!
//! Nothing waits for a timer: a task takes whatever queued while its previous call ran, so
//! a lone request goes out at once and a busy store gets large batches.

use tokio::sync::mpsc::Receiver;

/// Waits for one item, then takes what else is queued, up to `max` in all, keeping only
/// the items `wanted` accepts (callers that stopped waiting are dropped). `None` once the
/// queue is closed and empty.
pub(crate) async fn next<T>(
    queue: &mut Receiver<T>,
    max: usize,
    wanted: impl Fn(&T) -> bool,
) -> Option<Vec<T>> {
    loop {
        let first = queue.recv().await?;
        let mut batch = vec![first];
        while batch.len() < max {
            match queue.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        batch.retain(&wanted);
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn takes_what_is_queued_up_to_the_limit() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        assert_eq!(next(&mut rx, 3, |_| true).await, Some(vec![0, 1, 2]));
        assert_eq!(next(&mut rx, 3, |&i| i != 3).await, Some(vec![4]));
        drop(tx);
        assert_eq!(next(&mut rx, 3, |_| true).await, None);
    }
}
