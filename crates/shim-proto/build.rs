//! Compiles `proto/berth/shim/v1/shim.proto` without protoc: protox parses, prost-build
//! generates the messages only (the calls are carried by this crate's own framing).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = "../../proto";
    let file = "berth/shim/v1/shim.proto";
    println!("cargo:rerun-if-changed={root}/{file}");
    let fds = protox::compile([file], [root])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
