//! One router per Docker API area.

pub mod images;
pub mod system;
