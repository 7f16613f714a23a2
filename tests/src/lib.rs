//! Shared harness of the end-to-end tests and the demo: certificates made at run time, an
//! in-process hub on 127.0.0.1 with a real SQLite file, agent configurations, and the path of
//! the real `chiso-agent` and `chiso-hub` binaries for tests about processes.
//!
//! Every listener binds port 0 on 127.0.0.1 before anything connects, so no test sleeps to wait
//! for readiness and no traffic leaves the machine.

pub mod process;

use chiso_certs::{Ca, write_ca, write_pem_pair};
use chiso_hub::config::{Config as HubConfig, Limits, TlsConfig as HubTls};
use chiso_hub::store::StoreHandle;
use chiso_proto::v1::sync_client::SyncClient;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Certificates written into one folder: `ca.*`, `hub.*`, `agent-<code>.*`.
pub struct Pki {
    /// The folder.
    pub dir: PathBuf,
    /// The development CA, kept to issue more certificates in a test.
    pub ca: Ca,
}

impl Pki {
    /// Makes a CA, a hub certificate for localhost and 127.0.0.1, and one agent certificate
    /// per locality.
    pub fn create(dir: &Path, localities: &[&str]) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let ca = Ca::generate("chiso test CA")?;
        write_ca(dir, &ca)?;
        let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
        write_pem_pair(dir, "hub", &ca.issue_hub(&hosts, 30)?)?;
        for locality in localities {
            write_pem_pair(
                dir,
                &format!("agent-{locality}"),
                &ca.issue_agent(locality, 30)?,
            )?;
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca,
        })
    }

    /// Returns the path of a file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Builds client TLS settings from a certificate stem in the folder, such as `agent-01`.
    pub fn client_tls(&self, stem: &str) -> anyhow::Result<ClientTlsConfig> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(self.path("ca.crt"))?))
            .identity(Identity::from_pem(
                std::fs::read(self.path(&format!("{stem}.crt")))?,
                std::fs::read(self.path(&format!("{stem}.key")))?,
            ))
            .domain_name("localhost"))
    }
}

/// A hub running in this process.
pub struct HubHandle {
    /// The bound address on 127.0.0.1.
    pub addr: SocketAddr,
    /// The hub's configuration.
    pub config: HubConfig,
    /// The store, for direct reads in tests.
    pub store: StoreHandle,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl HubHandle {
    /// Returns the `https://` URL agents use.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Returns a hub configuration using the certificates of `pki` and a database in `dir`.
pub fn hub_config(pki: &Pki, dir: &Path) -> HubConfig {
    HubConfig {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        database: dir.join("hub.db"),
        tls: HubTls::new(pki.path("hub.crt"), pki.path("hub.key"), pki.path("ca.crt")),
        limits: Limits::default(),
        catalogue: None,
        catalogue_file: None,
        units_file: None,
        counters: Default::default(),
    }
}

/// Starts a hub on 127.0.0.1 with an ephemeral port.
pub async fn start_hub(config: HubConfig) -> anyhow::Result<HubHandle> {
    chiso_hub::server::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let store = StoreHandle::open_with_rules(
        &config.database,
        config.unit_catalogue()?,
        config.counters.rules(),
    )?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server_config = config.clone();
    let server_store = store.clone();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        if let Err(error) =
            chiso_hub::server::serve(&server_config, listener, server_store, stop).await
        {
            tracing::error!(%error, "test hub failed");
        }
    });
    Ok(HubHandle {
        addr,
        config,
        store,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

/// Writes an agent configuration for `locality` into `dir` and returns its path.
pub fn write_agent_config(
    dir: &Path,
    pki: &Pki,
    locality: &str,
    hub_url: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = format!(
        "locality = \"{locality}\"\nhub_url = \"{hub_url}\"\noutbox = \"{outbox}\"\n\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\n\n[push]\nbatch_records = 200\nwindow = 4\npoll_ms = 50\nmax_backoff_ms = 500\n",
        outbox = dir.join("outbox.db").display(),
        cert = pki.path(&format!("agent-{locality}.crt")).display(),
        key = pki.path(&format!("agent-{locality}.key")).display(),
        ca = pki.path("ca.crt").display(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Opens a raw push client with the certificate stem `stem` from `pki`.
pub async fn sync_client(
    pki: &Pki,
    stem: &str,
    addr: SocketAddr,
) -> anyhow::Result<SyncClient<Channel>> {
    let channel = Endpoint::from_shared(format!("https://localhost:{}", addr.port()))?
        .tls_config(pki.client_tls(stem)?)?
        .connect()
        .await?;
    Ok(SyncClient::new(channel))
}

/// Returns the path of a workspace binary, building it once per test process so it is never stale.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args([
            "build",
            "--quiet",
            "-p",
            "chiso-agent",
            "-p",
            "chiso-hub",
            "--bins",
        ]);
        if built_in_release() {
            command.arg("--release");
        }
        // Cargo gives this test process the variables of the chiso-tests package, such as
        // CARGO_MANIFEST_DIR and CARGO_PKG_NAME. Build scripts that watch them (ring's does) would
        // see them change and rebuild, and the next `cargo test` would rebuild them back.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || name.starts_with("CARGO_BIN_")
                || matches!(
                    name.as_ref(),
                    "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                )
            {
                command.env_remove(name.as_ref());
            }
        }
        let status = command
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building chiso-agent and chiso-hub failed"
        );
    });
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test binary> or target/<profile>/<bin> -> target/<profile>/<name>
    let folder = exe.parent().expect("binaries live in target/<profile>");
    let profile = if folder.ends_with("deps") {
        folder.parent().expect("deps lives in target/<profile>")
    } else {
        folder
    };
    profile.join(name)
}

fn built_in_release() -> bool {
    std::env::current_exe()
        .is_ok_and(|exe| exe.components().any(|part| part.as_os_str() == "release"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// Runs `chiso-hub recompute --verify` on a hub database, as an operator would, and fails
/// unless every counter equals a full recompute from the stored records.
pub fn verify_counters(database: &Path) {
    let output = Command::new(binary("chiso-hub"))
        .args(["recompute", "--verify", "--database"])
        .arg(database)
        .output()
        .expect("chiso-hub runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("clean"),
        "recompute --verify found differences:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Counts the dossier rows the hub stores for a source locality, and their distinct codes.
pub fn hub_count_distinct(store: &StoreHandle, locality: &str) -> anyhow::Result<(i64, i64)> {
    let connection = store.reader()?;
    Ok(connection.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT code) FROM dossiers WHERE source = ?1",
        [locality],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}
