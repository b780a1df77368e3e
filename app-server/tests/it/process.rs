//! The `keel` binary as an operator runs it: configuration errors, a kill -9 right after a
//! webhook's 200 (the job still runs after restart), and graceful shutdown on SIGTERM.

use crate::on_both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::{API_KEY, API_SECRET};
use shopify_sim::{SessionTokenOptions, Sim, SimConfig, WebhookDelivery};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SHOP: &str = "process-shop.myshopify.com";
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct KeelProcess {
    child: Child,
    url: String,
}

impl KeelProcess {
    async fn start(db: &TestDb, sim: &Sim, port: u16, workers: &str) -> KeelProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_keel"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SHOPIFY_API_KEY", API_KEY)
            .env("SHOPIFY_API_SECRET", API_SECRET)
            .env("SHOPIFY_APP_URL", format!("http://127.0.0.1:{port}"))
            .env("PORT", port.to_string())
            .env("KEEL_BIND", "127.0.0.1")
            .env("DATABASE_URL", db.url())
            .env("KEEL_ENCRYPTION_KEY", KEY_HEX)
            .env("KEEL_SHOPIFY_ORIGIN", sim.origin())
            .env("KEEL_WORKERS", workers)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn keel");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{url}/readyz")).await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "keel did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        KeelProcess { child, url }
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for KeelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

on_both_backends! {
    async fn job_survives_a_kill_right_after_the_webhook_was_acknowledged(backend: Backend) {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let sim = Sim::spawn(SimConfig { api_key: API_KEY.into(), api_secret: API_SECRET.into(), ..SimConfig::default() }).await;
        sim.install_shop(SHOP, ["read_customers"]);
        let port = free_port();

        // A web-only process: it acknowledges and queues, but runs no jobs.
        let keel = KeelProcess::start(&db, &sim, port, "0").await;
        let token = sim.session_token(SHOP, SessionTokenOptions::default());
        let r = reqwest::Client::new().get(format!("{}/api/shop", keel.url)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let results = sim.send_webhook(&format!("{}/webhooks", keel.url), WebhookDelivery::app_uninstalled(SHOP)).await;
        assert_eq!(results[0].status, Some(200));
        keel.kill9();
        assert!(store.shop(SHOP).await.unwrap().unwrap().installed, "not processed before the kill");

        // Restarted with workers, the queued job runs.
        let keel = KeelProcess::start(&db, &sim, port, "1").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.shop(SHOP).await.unwrap().unwrap().installed {
            assert!(Instant::now() < deadline, "the job did not run after restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(store.token(SHOP).await.unwrap().is_none());
        assert_eq!(store.job_counts().await.unwrap().done, 1);
        drop(keel);
    }
}

#[tokio::test]
async fn sigterm_stops_keel_gracefully_with_exit_code_zero() {
    let db = TestDb::new(Backend::Sqlite).await;
    let sim = Sim::spawn(SimConfig::default()).await;
    let mut keel = KeelProcess::start(&db, &sim, free_port(), "1").await;
    let pid = keel.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = keel.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "keel did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn serve_with_missing_and_malformed_variables_exits_nonzero_naming_each() {
    let out = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("serve")
        .env_clear()
        .env("SHOPIFY_API_KEY", "k")
        .env("PORT", "not-a-port")
        .env("KEEL_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in [
        "SHOPIFY_API_SECRET",
        "SHOPIFY_APP_URL",
        "PORT",
        "KEEL_LOG_FORMAT",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("keel: {name} "))),
            "{name} not reported:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("SHOPIFY_API_KEY is"),
        "a valid variable is not a problem:\n{stderr}"
    );
}

#[test]
fn help_documents_every_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (name, _) in keel::config::VARIABLES {
        assert!(help.contains(name), "{name} missing from keel --help");
    }
}
