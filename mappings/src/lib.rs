//! The identity and room mapping table. (Placeholder.)
