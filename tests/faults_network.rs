//! Network faults between a real agent process and the hub, made by a small TCP proxy on
//! 127.0.0.1: every open connection is cut in the middle of a batch, and later frozen (bytes
//! neither forwarded nor refused). The agent notices both by itself, reconnects through the proxy
//! and finishes the push, with every dossier stored once.

use chiso_agent::sample::SampleSpec;
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::{tail, write_sample_copies};
use chiso_tests::{Pki, binary, hub_config, hub_count_distinct, start_hub, write_agent_config};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const DOSSIERS: i64 = 30_000;

/// One proxied connection: its two copy tasks and its freeze switch.
struct Link {
    tasks: Vec<JoinHandle<()>>,
    frozen: Arc<AtomicBool>,
}

/// A TCP proxy from a port of 127.0.0.1 to `upstream`. New connections always pass; `cut` and
/// `freeze` act on the connections open at the time of the call.
struct Proxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<Link>>> = Arc::default();
        let accepted = Arc::clone(&links);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let frozen = Arc::new(AtomicBool::new(false));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let tasks = vec![
                    tokio::spawn(pump(client_read, server_write, Arc::clone(&frozen))),
                    tokio::spawn(pump(server_read, client_write, Arc::clone(&frozen))),
                ];
                accepted.lock().unwrap().push(Link { tasks, frozen });
            }
        });
        Proxy {
            addr,
            links,
            accept,
        }
    }

    /// Closes every open connection at once, both ways.
    fn cut(&self) -> usize {
        let links: Vec<Link> = self.links.lock().unwrap().drain(..).collect();
        for link in &links {
            link.tasks.iter().for_each(JoinHandle::abort);
        }
        links.len()
    }

    /// Stops forwarding on every open connection without closing it.
    fn freeze(&self) -> usize {
        let links = self.links.lock().unwrap();
        links
            .iter()
            .for_each(|link| link.frozen.store(true, Ordering::SeqCst));
        links.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Copies bytes one way until either side closes. Once frozen, it keeps what it read forever.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Polls the hub every 20 ms, at most 60 s, until `done` holds for its row count.
async fn wait_hub(store: &chiso_hub::store::StoreHandle, done: impl Fn(i64) -> bool) -> i64 {
    let mut rows = 0;
    for _ in 0..3_000 {
        rows = hub_count_distinct(store, "79").unwrap().0;
        if done(rows) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_frozen_connections_recover_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["79"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let proxy = Proxy::start(hub.addr).await;
    let proxy_url = format!("https://localhost:{}", proxy.addr.port());
    let config = write_agent_config(&dir.path().join("agent"), &pki, "79", &proxy_url).unwrap();
    // Small batches keep the push going long enough to hit it twice; a short Ack timeout
    // detects the frozen connection quickly.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "batch_records = 200",
        "batch_records = 50\nack_timeout_ms = 2000",
    );
    std::fs::write(&config, text).unwrap();

    let spec = SampleSpec {
        province: "79".into(),
        dossiers: DOSSIERS as usize / 3,
        month: "2026-10".parse().unwrap(),
        seed: 21,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    };
    let files = write_sample_copies(&spec, "n", 3, &dir.path().join("data")).unwrap();
    let mut ingest = tokio::process::Command::new(binary("chiso-agent"));
    ingest
        .arg("ingest")
        .arg("--config")
        .arg(&config)
        .args(&files);
    let output = ingest.output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let log = dir.path().join("agent.log");
    let mut agent = tokio::process::Command::new(binary("chiso-agent"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let at_cut = wait_hub(&hub.store, |rows| rows > 0).await;
    assert!(
        at_cut > 0 && at_cut < DOSSIERS,
        "hub had {at_cut} at the cut"
    );
    assert!(proxy.cut() >= 1, "no connection was open to cut");
    let after_cut = wait_hub(&hub.store, |rows| rows > at_cut + 1_000).await;
    assert!(
        after_cut > at_cut + 1_000,
        "no progress after the cut: {}",
        tail(&log)
    );

    assert!(after_cut < DOSSIERS, "the push ended before the freeze");
    assert!(proxy.freeze() >= 1, "no connection was open to freeze");
    let at_freeze = hub_count_distinct(&hub.store, "79").unwrap().0;
    let done = wait_hub(&hub.store, |rows| rows == DOSSIERS).await;
    assert_eq!(
        done,
        DOSSIERS,
        "the push did not finish after the freeze: {}",
        tail(&log)
    );
    assert!(done > at_freeze);

    let (rows, distinct) = hub_count_distinct(&hub.store, "79").unwrap();
    assert_eq!((rows, distinct), (DOSSIERS, DOSSIERS));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("no Ack from the hub within 2000 ms"),
        "{}",
        tail(&log)
    );
    agent.kill().await.unwrap();
    drop(proxy);
    chiso_tests::verify_counters(&hub.config.database);
    hub.stop().await;
}
