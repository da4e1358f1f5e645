//! A latency-injecting TCP proxy, for putting distance between processes on one machine
//! (`bench regions`: 50 ms between the hub and AP, 100 ms between the hub and KA).
//!
//! [`DelayProxy::start`] listens on `127.0.0.1:PORT` (a free port) and forwards every
//! connection to a [`Target`] — a TCP address or a unix socket file (a private
//! PostgreSQL listens on its socket only; PostgreSQL then sees a local connection and its
//! trust authentication applies). Each direction of each connection is a reader and a
//! writer joined by a queue: the reader stamps every chunk it reads with `now + delay`, the
//! writer sleeps until that time and writes it, so every byte arrives at least `delay`
//! after it was read, in order, without limiting the bandwidth (chunks in flight overlap,
//! as on a long link). A round trip through the proxy therefore costs at least `2 × delay`.
//! Tokio's timer rounds each sleep up to the next millisecond. End of stream is passed on
//! (after the same delay) as a write shutdown; an error in either direction closes the
//! connection. Dropping the proxy stops it from accepting; open connections close when
//! their peers do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::time::Instant;

/// Where a [`DelayProxy`] forwards to.
#[derive(Debug, Clone)]
pub enum Target {
    Tcp(SocketAddr),
    /// A unix socket file, e.g. a private PostgreSQL's `DIR/.s.PGSQL.5432`.
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "{a}"),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A running proxy; stops accepting when dropped.
pub struct DelayProxy {
    addr: SocketAddr,
    delay: Duration,
    task: tokio::task::JoinHandle<()>,
}

/// The largest chunk read at once.
const CHUNK: usize = 64 * 1024;
/// Chunks queued in one direction before the reader waits (back-pressure, bounded memory).
const QUEUE: usize = 1024;

impl DelayProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `target`,
    /// delaying each direction by `delay` (one way).
    pub async fn start(target: Target, delay: Duration) -> anyhow::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the delay proxy")?;
        let addr = listener.local_addr()?;
        tracing::debug!(%addr, %target, delay_ms = delay.as_millis() as u64, "delay proxy");
        let task = tokio::spawn(async move {
            loop {
                let (client, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "the delay proxy could not accept");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let target = target.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(client, &target, delay).await {
                        tracing::debug!(%addr, %target, error = %e, "proxied connection ended");
                    }
                });
            }
        });
        Ok(DelayProxy { addr, delay, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its one-way delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(client: TcpStream, target: &Target, delay: Duration) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    match target {
        Target::Tcp(a) => {
            let server = TcpStream::connect(a).await?;
            server.set_nodelay(true)?;
            let (sr, sw) = server.into_split();
            both(cr, cw, sr, sw, delay).await
        }
        Target::Unix(p) => {
            let (sr, sw) = UnixStream::connect(p).await?.into_split();
            both(cr, cw, sr, sw, delay).await
        }
    }
}

/// Both directions; the first error ends both.
async fn both<CR, CW, SR, SW>(
    cr: CR,
    cw: CW,
    sr: SR,
    sw: SW,
    delay: Duration,
) -> std::io::Result<()>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    tokio::try_join!(one_way(cr, sw, delay), one_way(sr, cw, delay)).map(|_| ())
}

/// Copies `r` to `w`, each chunk no earlier than `delay` after it was read.
async fn one_way<R, W>(mut r: R, mut w: W, delay: Duration) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // `None`: end of stream.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Option<Vec<u8>>)>(QUEUE);
    let read = async move {
        // One buffer per direction, and each chunk copied out at its length: a zeroed
        // 64 KiB buffer per read (kept whole while it waits out the delay) made the proxy
        // spend its CPU clearing memory for 100-byte queries.
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = r.read(&mut buf).await?;
            let due = Instant::now() + delay;
            if n == 0 {
                let _ = tx.send((due, None)).await;
                return Ok::<(), std::io::Error>(());
            }
            if tx.send((due, Some(buf[..n].to_vec()))).await.is_err() {
                // The writer is gone (its side failed); it reports the error.
                return Ok(());
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) => w.write_all(&bytes).await?,
                None => break,
            }
        }
        // End of stream (or the reader failed): pass the end on.
        w.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant as StdInstant;

    const DELAY: Duration = Duration::from_millis(40);

    /// A server that greets on accept, then answers each chunk it reads with the same
    /// bytes, reporting when each chunk arrived.
    async fn greet_and_echo<S>(
        mut s: S,
        arrived: tokio::sync::mpsc::UnboundedSender<StdInstant>,
    ) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        s.write_all(b"hello").await?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let _ = arrived.send(StdInstant::now());
            s.write_all(&buf[..n]).await?;
        }
    }

    /// Through the proxy: the greeting (server → client) takes ≥ the delay, a request
    /// (client → server) arrives ≥ the delay after it was sent, a round trip takes
    /// ≥ 2 × the delay, and 1 MiB of patterned bytes comes back intact and in order.
    async fn check(
        proxy: &DelayProxy,
        mut arrived: tokio::sync::mpsc::UnboundedReceiver<StdInstant>,
    ) {
        let connected = StdInstant::now();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut hello = [0u8; 5];
        c.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"hello");
        let greeting = connected.elapsed();
        assert!(greeting >= DELAY, "server → client took {greeting:?}");

        let sent = StdInstant::now();
        c.write_all(b"ping").await.unwrap();
        let at = arrived.recv().await.unwrap();
        let mut pong = [0u8; 4];
        c.read_exact(&mut pong).await.unwrap();
        let rtt = sent.elapsed();
        assert_eq!(&pong, b"ping");
        assert!(at - sent >= DELAY, "client → server took {:?}", at - sent);
        assert!(rtt >= 2 * DELAY, "round trip took {rtt:?}");
        assert!(
            rtt < 2 * DELAY + Duration::from_secs(2),
            "round trip took {rtt:?}"
        );

        let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = c.into_split();
        let expected = data.clone();
        let writer = tokio::spawn(async move { w.write_all(&data).await.map(|_| w) });
        let mut back = vec![0u8; expected.len()];
        r.read_exact(&mut back).await.unwrap();
        assert!(back == expected, "the bytes came back changed");
        drop(writer.await.unwrap().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delays_both_directions_to_a_tcp_target() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target::Tcp(server.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (s, _) = server.accept().await.unwrap();
            let _ = greet_and_echo(s, tx).await;
        });
        let proxy = DelayProxy::start(target, DELAY).await.unwrap();
        assert_eq!(proxy.delay(), DELAY);
        check(&proxy, rx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delays_both_directions_to_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".s.PGSQL.5432");
        let server = tokio::net::UnixListener::bind(&path).unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (s, _) = server.accept().await.unwrap();
            let _ = greet_and_echo(s, tx).await;
        });
        let proxy = DelayProxy::start(Target::Unix(path), DELAY).await.unwrap();
        check(&proxy, rx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_end_of_stream_on() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target::Tcp(server.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            s.write_all(&all).await.unwrap();
        });
        let proxy = DelayProxy::start(target, DELAY).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"all of it").await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"all of it");
    }
}
