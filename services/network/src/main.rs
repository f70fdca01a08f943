fn main() -> anyhow::Result<()> {
    berth_service::main(berth_types::ServiceName::Network, berth_network::serve)
}
