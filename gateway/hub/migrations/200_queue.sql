-- The hub's durable queue (versions 200..299; the mapping table owns 100..199
-- in the same file, so both migrators run with ignore-missing).

-- One row per (message, destination adapter) still to deliver. `id` is
-- assigned by the queue's single writer in acceptance order, so ORDER BY id
-- is delivery order after a restart. Times are microseconds since the Unix
-- epoch (UTC).
CREATE TABLE queue_entry (
    id           INTEGER PRIMARY KEY,
    message_id   TEXT    NOT NULL,
    adapter      TEXT    NOT NULL,
    enqueued_at  INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    -- NULL: the message never expires.
    expires      INTEGER,
    -- A format byte, then the message in postcard.
    message      BLOB    NOT NULL
) STRICT;

-- No secondary index on adapter, next_attempt or expires: the hub keeps the
-- pending entries in memory (Queue::open returns them all) and no statement
-- selects by those columns, while every index is one more B-tree write per
-- message in the group commit. A later migration adds one with the first
-- query that needs it.

-- Ids of every message accepted within the de-duplication horizon: a message
-- that comes back (a federating gateway, a sender's retransmission) is
-- dropped even after a restart.
CREATE TABLE queue_seen (
    message_id TEXT    PRIMARY KEY,
    first_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX queue_seen_first_seen ON queue_seen (first_seen);
