//! The answer to a submitted enqueue: [`Pending`], in one step (on disk)
//! or two ([`Pending::staged`]: written, then [`Staged::committed`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::sync::oneshot;

use cpimgate_model::Message;

use super::writer::Accepted;
use super::{Entry, EntryId, QueueError};

/// A submitted enqueue, resolving to its entries once its group is
/// committed (see [`super::Queue::submit`]); or, through [`Pending::staged`], in
/// two steps: the entries as soon as they are written, then the commit.
#[derive(Debug)]
#[must_use = "the message is written anyway; await this to learn when it is on disk"]
pub struct Pending {
    staged: oneshot::Receiver<Accepted>,
    answer: oneshot::Receiver<Result<Accepted, QueueError>>,
    deliveries: Option<Vec<(String, Message)>>,
}

impl Pending {
    pub(super) fn new(
        staged: oneshot::Receiver<Accepted>,
        answer: oneshot::Receiver<Result<Accepted, QueueError>>,
        deliveries: Vec<(String, Message)>,
    ) -> Self {
        Pending {
            staged,
            answer,
            deliveries: Some(deliveries),
        }
    }

    /// Resolves once the writer has written the entries inside its group's
    /// transaction, **before** the commit, with the entries (ids known,
    /// duplicates decided) — or with no entries when the message is a
    /// duplicate or its group failed before writing it. Then
    /// [`Staged::committed`] tells whether the group reached the disk.
    ///
    /// Entries handed on at this point may be delivered although the
    /// commit then fails: see "Staging" in the module doc.
    pub async fn staged(mut self) -> Staged {
        let entries = match (&mut self.staged).await {
            Ok(accepted) => entries_of(self.deliveries.take().unwrap_or_default(), accepted),
            Err(_) => Vec::new(),
        };
        Staged {
            entries,
            committed: Committed {
                answer: self.answer,
            },
        }
    }
}

/// The entries of a submitted enqueue, written but not yet committed (see
/// [`Pending::staged`]).
#[derive(Debug)]
#[must_use = "await `committed` before acknowledging the message"]
pub struct Staged {
    /// The new entries, in the order of the deliveries; empty for a
    /// duplicate, or when the group failed before they were written.
    pub entries: Vec<Entry>,
    /// Resolves once the group is committed: `Ok` means on disk;
    /// [`QueueError::Duplicate`] that an earlier copy is.
    pub committed: Committed,
}

/// The commit of a staged enqueue (see [`Staged::committed`]).
#[derive(Debug)]
#[must_use = "the group commits anyway; await this to learn whether it reached the disk"]
pub struct Committed {
    answer: oneshot::Receiver<Result<Accepted, QueueError>>,
}

impl Future for Committed {
    type Output = Result<(), QueueError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(Pin::new(&mut self.answer).poll(cx)) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(QueueError::Closed),
        })
    }
}

fn entries_of(deliveries: Vec<(String, Message)>, accepted: Accepted) -> Vec<Entry> {
    deliveries
        .into_iter()
        .zip(accepted.first_id..)
        .map(|((adapter, message), id)| Entry {
            id: EntryId(id),
            adapter,
            message,
            attempts: 0,
            next_attempt: accepted.at,
            enqueued_at: accepted.at,
        })
        .collect()
}

impl Future for Pending {
    type Output = Result<Vec<Entry>, QueueError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let accepted = match ready!(Pin::new(&mut self.answer).poll(cx)) {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(e)) => return Poll::Ready(Err(e)),
            Err(_) => return Poll::Ready(Err(QueueError::Closed)),
        };
        let deliveries = self.deliveries.take().unwrap_or_default();
        Poll::Ready(Ok(entries_of(deliveries, accepted)))
    }
}
