//! The agent process killed with SIGKILL in the middle of a push and restarted: every dossier
//! reaches the hub exactly once, with nothing lost and nothing counted twice.

use chiso_agent::sample::{SampleSpec, write_sample};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::{Pki, binary, hub_config, hub_count_distinct, start_hub, write_agent_config};
use std::time::Duration;

const DOSSIERS: usize = 20_000;
const KILLS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_push_counts_each_dossier_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["79"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let config = write_agent_config(&dir.path().join("agent"), &pki, "79", &hub.url()).unwrap();

    let spec = SampleSpec {
        province: "79".into(),
        dossiers: DOSSIERS,
        month: "2026-10".parse().unwrap(),
        seed: 7,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    };
    let file = dir.path().join("dossiers.json");
    write_sample(&spec, UnitCatalogue::official(), &file).unwrap();
    let ingest = std::process::Command::new(binary("chiso-agent"))
        .args([
            "ingest",
            "--config",
            config.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stdout)
    );

    // Kill the pushing agent as soon as the hub has part, but not all, of the dossiers. The
    // wait is bounded: 600 polls of 20 ms.
    let mut kills = 0;
    let mut last_seen = 0;
    while kills < KILLS {
        let mut child = tokio::process::Command::new(binary("chiso-agent"))
            .args(["run", "--config", config.to_str().unwrap()])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut killed = false;
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (rows, _) = hub_count_distinct(&hub.store, "79").unwrap();
            if rows > last_seen && rows < DOSSIERS as i64 {
                child.start_kill().unwrap();
                let status = child.wait().await.unwrap();
                assert_eq!(
                    std::os::unix::process::ExitStatusExt::signal(&status),
                    Some(9)
                );
                last_seen = rows;
                killed = true;
                break;
            }
        }
        assert!(
            killed,
            "the push never reached a point to kill it (hub had {last_seen})"
        );
        kills += 1;
    }

    let run = tokio::process::Command::new(binary("chiso-agent"))
        .args([
            "run",
            "--until-drained",
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let (rows, distinct) = hub_count_distinct(&hub.store, "79").unwrap();
    assert_eq!(rows, DOSSIERS as i64, "every dossier reached the hub");
    assert_eq!(distinct, DOSSIERS as i64, "no dossier was stored twice");
    let versions: i64 = hub
        .store
        .reader()
        .unwrap()
        .query_row(
            "SELECT MAX(version) FROM dossiers WHERE source = '79'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(versions, 1, "a replay created a new version");
    chiso_tests::verify_counters(&hub.config.database);

    // Every dossier of the sample was received in October, so the score counts each once.
    let channel = chiso_agent::push::connect(&hub.url(), pki.client_tls("agent-79").unwrap())
        .await
        .unwrap();
    let scores = chiso_agent::scores::fetch(channel, "79", "2026-10", spec.as_of)
        .await
        .unwrap();
    let filing = scores.units[0]
        .indicators
        .iter()
        .flat_map(|indicator| std::iter::once(indicator).chain(&indicator.parts))
        .find(|indicator| indicator.id == "ONLINE_FILING")
        .unwrap();
    assert_eq!(filing.denominator, DOSSIERS as u64);
    hub.stop().await;
}
