//! Docker's dialect for the images service's typed messages: request filters parsed, inspect
//! objects rendered.

pub mod image;
pub mod image_filters;
