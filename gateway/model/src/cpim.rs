//! The `message/cpim` codec (RFC 3862). (Placeholder.)
