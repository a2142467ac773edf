//! The cpimgate hub. (Placeholder.)
