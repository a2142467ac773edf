-- Room history for history on join (XEP-0045 §7.2.15 and its equivalents):
-- the latest room messages of each bridge. Written by the queue's writer in
-- the same transaction as the message's queue entries, only for accepted,
-- non-private room messages; pruned to a count per bridge and a maximum age
-- in the writer's prune step.
CREATE TABLE history_message (
    -- Acceptance order: the order in which the bridge relayed them, which
    -- is the order history is replayed in.
    id         INTEGER PRIMARY KEY,
    bridge     TEXT    NOT NULL,
    -- The room it was said in: adapter instance and room address.
    adapter    TEXT    NOT NULL,
    room       TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    -- When it was said (the message's DateTime, never later than when the
    -- gateway received it), microseconds since the Unix epoch (UTC).
    said_at    INTEGER NOT NULL,
    -- A format byte, then the message in postcard (as queue_entry.message).
    message    BLOB    NOT NULL
) STRICT;

-- The newest rows of one bridge, for reading and for pruning to a count.
-- Age pruning scans the table, which the count bounds.
CREATE INDEX history_message_bridge ON history_message (bridge, id);
