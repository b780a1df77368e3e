//! Liveness and readiness probes.

use crate::on_both_backends;
use crate::support::db::Backend;
use crate::support::TestKeel;

on_both_backends! {
    async fn healthz_is_ok_and_readyz_reports_current_migrations(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let r = keel.http.get(format!("{}/healthz", keel.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = keel.http.get(format!("{}/readyz", keel.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["ready"], true);
        assert_eq!(body["migrations"], "current");
        assert_eq!(body["backend"], match backend { Backend::Sqlite => "sqlite", Backend::Postgres => "postgres" });
    }
}
