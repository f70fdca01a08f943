use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::eventually;

/// A nats-server with JetStream, owned by one test, on its own port and store.
pub struct Nats {
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl Nats {
    pub fn start(store: PathBuf) -> Nats {
        let mut n = Nats {
            port: crate::free_port(),
            store,
            child: None,
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and store, and waits until it accepts connections.
    pub fn restart(&mut self) {
        std::fs::create_dir_all(&self.store).expect("nats store");
        let child = Command::new("nats-server")
            .args(["--jetstream", "--store_dir"])
            .arg(&self.store)
            .args(["--addr", "127.0.0.1", "--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        self.child = Some(child);
        let port = self.port;
        eventually("nats-server to listen", || {
            std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .ok()
        });
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
