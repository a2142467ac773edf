//! Fixtures for the pure parts of client mode.
