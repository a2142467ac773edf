//! XMPP adapter: component mode (XEP-0114) and client mode, MUC and 1:1.
//!
//! Not built yet: this crate exists so that the workspace has its final
//! shape. Its issue adds component and client modes.
