-- cpimgate-mappings: rooms grouped into bridges (one conversation federated
-- across worlds). A room belongs to at most one bridge.
CREATE TABLE mapping_rooms (
    lookup_key TEXT PRIMARY KEY,
    room       TEXT NOT NULL,
    bridge     TEXT NOT NULL
);

CREATE INDEX mapping_rooms_bridge ON mapping_rooms (bridge);
