//! A TCP proxy between the platform and Postgres that can cut a connection right after
//! a chosen statement has been executed and committed, before its answer reaches the
//! platform: the one moment at which the platform cannot know whether its write landed.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The server's "ready for query, idle" message: the statement is done and committed.
const READY_IDLE: &[u8] = b"Z\0\0\0\x05I";
/// The client's Execute of the unnamed portal, all rows. A statement may be parsed and
/// described in a round trip of its own first: only its execution is cut.
const EXECUTE_UNNAMED: &[u8] = b"E\0\0\0\x09\0\0\0\0\0";

#[derive(Clone)]
pub struct CuttingProxy {
    pub port: u16,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// Forwards to `upstream`; statements containing `marker` are watched for once armed.
    pub async fn start(upstream: SocketAddr, marker: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            armed: Arc::default(),
            cuts: Arc::default(),
        };
        let serving = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let proxy = serving.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = proxy.relay(client, server, marker).await;
                    }
                });
            }
        });
        proxy
    }

    /// The next statement with the marker is executed, and its connection then cut.
    pub fn cut_next(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    async fn relay(
        &self,
        mut client: TcpStream,
        mut server: TcpStream,
        marker: &[u8],
    ) -> std::io::Result<()> {
        let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let (mut marked, mut cutting) = (false, false);
        // Prepared statements of this connection whose text holds the marker: after
        // their first Parse they are only named (in Bind), never sent again.
        let mut prepared: Vec<Vec<u8>> = Vec::new();
        loop {
            tokio::select! {
                read = client.read(&mut up) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    let chunk = &up[..n];
                    if let Some(name) = statement_name(chunk, marker)
                        && !prepared.contains(&name)
                    {
                        prepared.push(name);
                    }
                    let runs_marked = contains(chunk, marker)
                        || prepared
                            .iter()
                            .any(|name| contains(chunk, &[b"\0", name.as_slice(), b"\0"].concat()));
                    if runs_marked && self.armed.swap(false, Ordering::SeqCst) {
                        marked = true;
                    }
                    if marked && contains(&up[..n], EXECUTE_UNNAMED) {
                        cutting = true;
                    }
                    server.write_all(&up[..n]).await?;
                }
                read = server.read(&mut down) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    if cutting {
                        // Swallow the answer; once the server is idle again (committed),
                        // drop both connections.
                        if contains(&down[..n], READY_IDLE) {
                            self.cuts.fetch_add(1, Ordering::SeqCst);
                            return Ok(());
                        }
                        continue;
                    }
                    client.write_all(&down[..n]).await?;
                }
            }
        }
    }
}

/// The name a Parse message gives the statement whose text holds `marker`: a Parse is
/// `P`, its length, the name, NUL, the text, NUL, and sqlx names its prepared
/// statements `sqlx_s_<n>` (the unnamed statement's text is sent with every run).
fn statement_name(chunk: &[u8], marker: &[u8]) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"sqlx_s_";
    let at = chunk
        .windows(marker.len())
        .position(|window| window == marker)?;
    let name_end = chunk[..at].iter().rposition(|byte| *byte == 0)?;
    let name_start = chunk[..name_end]
        .windows(PREFIX.len())
        .rposition(|window| window == PREFIX)?;
    let name = &chunk[name_start..name_end];
    name.iter()
        .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
        .then(|| name.to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
