//! Compiles the .proto files in pure Rust (protox), so building needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["mlsched/v1/placement.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["."])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
