fn main() -> anyhow::Result<()> {
    berth_service::main(berth_types::ServiceName::Volumes, berth_volumes::serve)
}
