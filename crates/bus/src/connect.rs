use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_nats::{ConnectOptions, Event as NatsEvent};

/// A NATS connection that is created even while the server is down and reconnects forever.
/// Commands never wait on it: callers check [`Bus::is_connected`] or buffer.
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    connected: Arc<AtomicBool>,
    url: String,
}

impl Bus {
    /// Starts connecting to `url` in the background; returns at once.
    pub async fn connect(url: &str, name: &str) -> Result<Bus, crate::BusError> {
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let client = ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((100 * 2u64.saturating_pow(attempt.min(5) as u32)).min(2000))
            })
            .event_callback(move |ev| {
                let flag = flag.clone();
                async move {
                    match ev {
                        NatsEvent::Connected => {
                            tracing::info!("connected to NATS");
                            flag.store(true, Ordering::SeqCst);
                        }
                        NatsEvent::Disconnected => {
                            tracing::warn!("disconnected from NATS; events are buffered");
                            flag.store(false, Ordering::SeqCst);
                        }
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|source| crate::BusError::Connect {
                url: url.to_owned(),
                source,
            })?;
        Ok(Bus {
            client,
            connected,
            url: url.to_owned(),
        })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client.clone())
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
            && self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}
