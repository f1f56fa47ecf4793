//! The Placement gRPC API (`mlsched/v1/placement.proto`): generated client and server types.

pub mod v1 {
    tonic::include_proto!("mlsched.v1");
}
