//! pingan's wire contract, alone: the `pingan.v1` messages and services generated from
//! `proto/pingan/v1/*.proto`, and the descriptor set that server reflection serves. Wire types
//! stop at the edges: `pingan-domain` turns them into domain types (and back) once.

/// Generated from `proto/pingan/v1/*.proto`.
#[allow(missing_debug_implementations, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("pingan.v1");

    /// Encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/pingan_descriptor.bin"));
}

pub mod codec;
