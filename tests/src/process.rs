//! Harness for the fault tests. It runs a real `chiso-hub run` process that can be killed and
//! restarted on the same port and database, and reads its database. It also has a minimal
//! HTTP/1.1 client for the agent's intake, the peak memory of a process, and large sample inputs.
//!
//! Everything listens on and connects to 127.0.0.1 only, and every wait is a bounded poll.

use crate::{Pki, binary};
use anyhow::{Context, bail};
use chiso_agent::sample::{SampleSpec, generate};
use chiso_proto::units::UnitCatalogue;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Polls of 20 ms a process gets to start listening: 30 s.
const READY_POLLS: u32 = 1_500;

/// Returns a port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `addr`, or fails after 30 s.
pub fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    for _ in 0..READY_POLLS {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "process exited with {status} before listening on {addr}: {}",
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on {addr} after 30 s: {}", tail(log))
}

/// Returns the last 2,000 characters of a log file, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(2_000);
    let start = (start..text.len())
        .find(|&index| text.is_char_boundary(index))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// A `chiso-hub run` process on a fixed port of 127.0.0.1 with its database in a folder.
pub struct HubProcess {
    /// The port, kept across restarts.
    pub port: u16,
    /// The hub's database file.
    pub database: PathBuf,
    /// The hub's log (stderr of every run, appended).
    pub log: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl HubProcess {
    /// Writes `hub.toml` into `dir` with the certificates of `pki`, and starts the hub.
    pub fn start(pki: &Pki, dir: &Path) -> anyhow::Result<HubProcess> {
        HubProcess::start_with(pki, dir, "")
    }

    /// Like [`HubProcess::start`], with `extra` TOML (such as a `[limits]` table) appended to
    /// the configuration.
    pub fn start_with(pki: &Pki, dir: &Path, extra: &str) -> anyhow::Result<HubProcess> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let database = dir.join("hub.db");
        let config = dir.join("hub.toml");
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{}\"\n\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            database.display(),
            pki.path("hub.crt").display(),
            pki.path("hub.key").display(),
            pki.path("ca.crt").display(),
        ) + extra;
        std::fs::write(&config, text)?;
        let mut hub = HubProcess {
            port,
            database,
            log: dir.join("hub.log"),
            config,
            child: None,
        };
        hub.restart()?;
        Ok(hub)
    }

    /// Returns the `https://` URL agents use.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Starts the hub again on the same port and database, and waits until it listens.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut child = Command::new(binary("chiso-hub"))
            .args(["run", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start chiso-hub")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let ready = wait_listening(addr, &mut child, &self.log);
        self.child = Some(child);
        ready
    }

    /// Kills the hub with SIGKILL and waits for it; does nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Opens the hub's database read-only.
    pub fn reader(&self) -> anyhow::Result<Connection> {
        let connection =
            Connection::open_with_flags(&self.database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        Ok(connection)
    }

    /// Counts the dossier rows stored for a source locality, and their distinct codes.
    pub fn count(&self, locality: &str) -> anyhow::Result<(i64, i64)> {
        Ok(self.reader()?.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT code) FROM dossiers WHERE source = ?1",
            [locality],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }

    /// Returns every stored dossier code of a source locality with its version.
    pub fn versions(&self, locality: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        hub_versions(&self.reader()?, locality)
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Returns every stored dossier code of a source locality with its version, from a hub database.
pub fn hub_versions(
    connection: &Connection,
    locality: &str,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut statement =
        connection.prepare("SELECT code, version FROM dossiers WHERE source = ?1")?;
    let rows = statement.query_map([locality], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut versions = BTreeMap::new();
    for row in rows {
        let (code, version) = row?;
        versions.insert(code, u64::try_from(version)?);
    }
    Ok(versions)
}

/// An HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The status line and headers, lower-cased.
    pub head: String,
    /// The body.
    pub body: String,
}

/// Sends `POST path` with `body` to `addr` over a new connection and reads the whole response.
pub fn http_post(addr: SocketAddr, path: &str, body: &[u8]) -> anyhow::Result<HttpReply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8(answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("the answer has no end of headers")?;
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .context("the answer has no status code")?;
    Ok(HttpReply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

/// Reads the peak resident set size (`VmHWM`) of a running process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Generates `spec.dossiers` records with the sample generator and writes `copies` JSON Lines
/// files of them into `dir`. Copy `k` gets `-<tag><k>` appended to every code, so the files
/// contain `copies * spec.dossiers` distinct dossiers, and no code equals one written with
/// another tag. Returns the files in order.
pub fn write_sample_copies(
    spec: &SampleSpec,
    tag: &str,
    copies: usize,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let envelope = generate(spec, UnitCatalogue::official())?;
    let records = envelope["data"]
        .as_array()
        .context("the sample envelope has data")?;
    let mut files = Vec::with_capacity(copies);
    for copy in 0..copies {
        let path = dir.join(format!("sample-{tag}{copy:03}.jsonl"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for record in records {
            let mut record = record.clone();
            let code = record["MaHoSo"]
                .as_str()
                .context("a sample record has MaHoSo")?;
            record["MaHoSo"] = format!("{code}-{tag}{copy}").into();
            serde_json::to_writer(&mut out, &record)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        files.push(path);
    }
    Ok(files)
}
