fn main() -> anyhow::Result<()> {
    berth_service::main(berth_types::ServiceName::Runtime, berth_runtime::serve)
}
