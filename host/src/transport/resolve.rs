//! Host-name look-ups (an agent named `sip:agent@bot.example.com`), off the
//! signalling task, with a deadline and a cache.
//!
//! The system resolver (`getaddrinfo`) may take the resolver's whole retry
//! schedule to fail — 10 s and more when a name server drops queries. So a
//! look-up never runs on the signalling task, gives up after `timeout`,
//! and its answer (or its failure, for a fifth of the time) is reused, so a
//! black-holed name costs one wait, not one per call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Names remembered at most; past it, expired entries go, then all.
const CAPACITY: usize = 1024;

/// A look-up's answer: the addresses, or why there are none.
type Answer = Result<Vec<SocketAddr>, String>;

/// The look-up cache: pure, driven by the caller's clock.
#[derive(Debug)]
struct Cache {
    ttl: Duration,
    entries: HashMap<(String, u16), (Instant, Answer)>,
}

impl Cache {
    fn get(&self, now: Instant, host: &str, port: u16) -> Option<Answer> {
        let (until, answer) = self.entries.get(&(host.to_owned(), port))?;
        (now < *until).then(|| answer.clone())
    }

    fn put(&mut self, now: Instant, host: &str, port: u16, answer: Answer) {
        if self.entries.len() >= CAPACITY {
            self.entries.retain(|_, (until, _)| now < *until);
            if self.entries.len() >= CAPACITY {
                self.entries.clear();
            }
        }
        let keep = match answer {
            Ok(_) => self.ttl,
            Err(_) => (self.ttl / 5).max(Duration::from_secs(1)),
        };
        self.entries
            .insert((host.to_owned(), port), (now + keep, answer));
    }
}

/// Resolves host names with a deadline and a shared cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Resolver {
    timeout: Duration,
    cache: Arc<Mutex<Cache>>,
}

impl Resolver {
    /// A resolver that waits at most `timeout` and keeps answers `ttl`.
    pub fn new(timeout: Duration, ttl: Duration) -> Resolver {
        Resolver {
            timeout,
            cache: Arc::new(Mutex::new(Cache {
                ttl,
                entries: HashMap::new(),
            })),
        }
    }

    /// The first address of `host` at `port`, preferring IPv4 when
    /// `want_v4` (our sockets speak one family). Never waits longer than
    /// the timeout; run it on a task of its own.
    pub async fn lookup(&self, host: &str, port: u16, want_v4: bool) -> Result<SocketAddr, String> {
        let cached = self.lock().get(Instant::now(), host, port);
        let answer = match cached {
            Some(answer) => answer,
            None => {
                let answer =
                    match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)))
                        .await
                    {
                        Ok(Ok(addrs)) => Ok(addrs.collect::<Vec<_>>()),
                        Ok(Err(e)) => Err(format!("cannot resolve `{host}`: {e}")),
                        Err(_) => Err(format!(
                            "cannot resolve `{host}`: no answer within {} ms",
                            self.timeout.as_millis()
                        )),
                    };
                self.lock().put(Instant::now(), host, port, answer.clone());
                answer
            }
        };
        let addrs = answer?;
        addrs
            .iter()
            .find(|a| a.is_ipv4() == want_v4)
            .or(addrs.first())
            .copied()
            .ok_or_else(|| format!("`{host}` has no address"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    #[test]
    fn answers_are_kept_for_the_ttl_and_failures_for_a_fifth() {
        let t0 = Instant::now();
        let mut cache = Cache {
            ttl: Duration::from_secs(60),
            entries: HashMap::new(),
        };
        cache.put(t0, "bot.example", 5060, Ok(vec![addr("192.0.2.1:5060")]));
        cache.put(t0, "gone.example", 5060, Err("no".into()));
        let later = |s| t0 + Duration::from_secs(s);
        assert!(cache.get(later(59), "bot.example", 5060).is_some());
        assert!(cache.get(later(60), "bot.example", 5060).is_none());
        assert!(cache.get(later(11), "gone.example", 5060).is_some());
        assert!(cache.get(later(12), "gone.example", 5060).is_none());
        assert!(cache.get(t0, "bot.example", 5070).is_none(), "per port");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let t0 = Instant::now();
        let mut cache = Cache {
            ttl: Duration::from_secs(60),
            entries: HashMap::new(),
        };
        for i in 0..(3 * CAPACITY) {
            cache.put(t0, &format!("h{i}.example"), 5060, Err("no".into()));
        }
        assert!(cache.entries.len() <= CAPACITY);
    }

    #[tokio::test]
    async fn literal_names_resolve_and_prefer_the_family() {
        let r = Resolver::new(Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(
            r.lookup("127.0.0.1", 5060, true).await,
            Ok(addr("127.0.0.1:5060"))
        );
    }
}
