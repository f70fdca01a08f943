fn main() -> anyhow::Result<()> {
    berth_service::main(
        berth_types::ServiceName::ApiGateway,
        berth_api_gateway::serve,
    )
}
