//! Generated gRPC code for Berth's services. Generated code only: conversions to domain types
//! live in each service's `convert.rs`.
#![allow(unreachable_pub, clippy::all)]

pub use prost;
pub use tonic;

pub mod runtime {
    pub mod v1 {
        tonic::include_proto!("berth.runtime.v1");
    }
}

pub mod images {
    pub mod v1 {
        tonic::include_proto!("berth.images.v1");
    }
}

pub mod network {
    pub mod v1 {
        tonic::include_proto!("berth.network.v1");
    }
}

pub mod volumes {
    pub mod v1 {
        tonic::include_proto!("berth.volumes.v1");
    }
}
