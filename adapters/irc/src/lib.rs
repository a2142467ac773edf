//! IRC adapter: relay and puppet modes, IRCv3.
//!
//! Not built yet: this crate exists so that the workspace has its final
//! shape. Its issue adds relay and puppet modes.
