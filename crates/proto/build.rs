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
    // A build context's bytes are decoded as slices of the received buffer, not copied into
    // a new vector per message.
    tonic_prost_build::configure()
        .bytes(".berth.images.v1.BuildRequest.data")
        .compile_fds(fds)?;
    Ok(())
}
