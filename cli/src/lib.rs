//! The `berth` operator CLI's commands.

pub mod certs;
pub mod status;
mod supervise;
pub mod up;
