//! One router per Docker API area.

pub mod archive;
pub mod images;
pub mod system;
