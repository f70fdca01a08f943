//! Compiles `proto/` without protoc: protox parses, tonic-prost-build generates.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = "../../proto";
    let files = [
        "berth/runtime/v1/runtime.proto",
        "berth/images/v1/images.proto",
        "berth/network/v1/network.proto",
        "berth/volumes/v1/volumes.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={root}/{f}");
    }
    let fds = protox::compile(files, [root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
