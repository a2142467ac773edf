-- cpimgate-mappings: learned nicknames.

-- RFC 7701 nickname reservations, scoped to a bridge (`bridge:<name>`) or a
-- room (its lookup key). `nick_key` is the folded nickname.
CREATE TABLE mapping_nick_reservations (
    scope_key TEXT NOT NULL,
    scope     TEXT NOT NULL,
    nick_key  TEXT NOT NULL,
    nick      TEXT NOT NULL,
    owner     TEXT NOT NULL,
    PRIMARY KEY (scope_key, nick_key)
);

-- IRC nicks chosen for remote users (puppets), per network, so that the same
-- person keeps the same nick. `nick_key` is folded by the network's CASEMAPPING.
CREATE TABLE mapping_irc_nicks (
    network  TEXT NOT NULL,
    who      TEXT NOT NULL,
    nick     TEXT NOT NULL,
    nick_key TEXT NOT NULL,
    PRIMARY KEY (network, who),
    UNIQUE (network, nick_key)
);
