use crate::config::Config;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub async fn run() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(problems) => {
            for line in &problems.0 {
                eprintln!("keel: {line}");
            }
            eprintln!("keel: see `keel --help` for every variable");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(config.log_format);

    let mut ports = vec![config.port];
    // `shopify app dev` sends its test app/uninstalled to BACKEND_PORT; serve both.
    if let Some(backend) = config.backend_port.filter(|p| *p != config.port) {
        ports.push(backend);
    }
    let mut listeners = Vec::new();
    for port in ports {
        match TcpListener::bind((config.bind, port)).await {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("keel: cannot listen on {}:{port}: {e}", config.bind);
                return ExitCode::FAILURE;
            }
        }
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    match crate::app::serve(config, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Cancel on Ctrl-C or SIGTERM (what `kill`, systemd and container runtimes send).
async fn signal_shutdown(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    token.cancel();
}
