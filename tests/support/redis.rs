//! A real `redis-server` for the tests that share outcomes between nodes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a loopback port, in a folder of its own, with no
/// persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        RedisServer::start_on(port)
    }

    /// A port nothing listens on yet, for a Redis started later with
    /// [`RedisServer::start_on`] (a Redis that is "down" until then).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
    }

    /// Starts one on `port` and waits until it answers `PING`.
    pub fn start_on(port: u16) -> RedisServer {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect(
                "redis-server is not installed: `sudo apt-get install -y redis-server` \
                 (cargo xtask test installs it)",
            );
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while !server.pings() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        RedisServer::url_of(self.port)
    }

    /// `redis://127.0.0.1:PORT/` for `port`.
    pub fn url_of(port: u16) -> String {
        format!("redis://127.0.0.1:{port}/")
    }

    fn pings(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        conn.write_all(b"PING\r\n").is_ok()
            && conn.read_exact(&mut buf).is_ok()
            && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
