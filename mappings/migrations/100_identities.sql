-- cpimgate-mappings: identities and their aliases.
-- Versions 100..199 belong to cpimgate-mappings; the hub's durable queue uses
-- 200..299 in the same database (both migrators run with ignore_missing).
-- Portable SQL: runs on SQLite and PostgreSQL.

-- One person. The id is allocated by the store (MAX(id) + 1 inside the
-- inserting transaction) so that no engine-specific auto-increment is needed.
CREATE TABLE mapping_identities (
    id           BIGINT PRIMARY KEY,
    display_name TEXT
);

-- One address of a person in one world. `lookup_key` is the normalised,
-- case-folded form (unique across all persons); `alias` is the compact string
-- form as given (`im:alice@example.com`, `irc:libera/Alice`, ...).
CREATE TABLE mapping_aliases (
    lookup_key  TEXT   PRIMARY KEY,
    alias       TEXT   NOT NULL,
    identity_id BIGINT NOT NULL REFERENCES mapping_identities (id) ON DELETE CASCADE
);

CREATE INDEX mapping_aliases_identity ON mapping_aliases (identity_id);
