//! The NATS subjects Berth uses. Every subject is built here, nowhere else.

use berth_types::{Event, ServiceName};

/// The JetStream stream that keeps the event history for `/events?since=`.
pub const EVENTS_STREAM: &str = "BERTH_EVENTS";
/// All event subjects: `berth.events.<type>.<action>`.
pub const EVENTS_ALL: &str = "berth.events.>";
/// All heartbeats: `berth.health.<service>`.
pub const HEALTH_ALL: &str = "berth.health.*";
/// Pull work shared by images instances through the queue group of the same name.
pub const JOBS_PULL: &str = "berth.jobs.pull";

/// `berth.events.<type>.<action base>`, e.g. `berth.events.container.exec_create`.
pub fn event(ev: &Event) -> String {
    format!("berth.events.{}.{}", ev.kind.as_str(), ev.action.base())
}

/// `berth.health.<service>`.
pub fn health(service: ServiceName) -> String {
    format!("berth.health.{}", service.as_str())
}

/// `berth.settle.<service>`: asks the service to answer once its events are stored.
pub fn settle(service: ServiceName) -> String {
    format!("berth.settle.{}", service.as_str())
}

#[cfg(test)]
mod tests {
    use berth_types::{Actor, EventType};

    use super::*;

    #[test]
    fn subjects() {
        let ev = Event::new(
            EventType::Container,
            "exec_create: ls -l".parse().unwrap(),
            Actor::default(),
            0,
        );
        assert_eq!(event(&ev), "berth.events.container.exec_create");
        assert_eq!(health(ServiceName::ApiGateway), "berth.health.api-gateway");
        assert_eq!(settle(ServiceName::Volumes), "berth.settle.volumes");
        for s in ServiceName::ALL {
            let subject = health(s);
            assert!(!subject.contains(' ') && subject.split('.').count() == 3);
        }
    }
}
