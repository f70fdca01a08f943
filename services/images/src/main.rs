fn main() -> anyhow::Result<()> {
    berth_service::main(berth_types::ServiceName::Images, berth_images::serve)
}
