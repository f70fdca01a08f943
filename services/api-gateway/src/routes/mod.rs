//! One router per Docker API area.

pub mod system;
