//! Compiles `proto/` with protox (a pure-Rust protobuf compiler: no protoc needed) and generates
//! the prost messages and tonic services into `OUT_DIR`, plus the encoded descriptor set that
//! server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/pingan/v1/report.proto",
        "proto/pingan/v1/query.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("pingan_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // maps as BTreeMap: a message encodes to the same bytes every time (a forwarded rollup's
        // digest decides whether it changed; HashMap iteration order would not)
        .btree_map(".")
        // a comparison's and a trend's columns of numbers as `Bytes`: read without a copy
        .bytes(".pingan.v1.CompareColumns")
        .bytes(".pingan.v1.TrendColumns")
        // prost's codec, with a reply's buffer reserved to its length before it is written
        .codec_path("crate::codec::SizedCodec")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
