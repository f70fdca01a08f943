//! The `berth` operator CLI's commands.

pub mod certs;
pub mod status;
pub mod up;
mod supervise;
