//! `shopify-sim` binary: runs the simulator until Ctrl-C or SIGTERM, for the demo and for manual
//! testing. Prints exactly one line on stdout once it accepts connections — its origin — so
//! scripts can read it; logs go to stderr.

use std::io::Write;

use clap::Parser;
use shopify_sim::{Seed, Sim, SimConfig, SimError, DEFAULT_API_KEY, DEFAULT_API_SECRET};

/// A local stand-in for Shopify (token endpoint, Admin GraphQL, webhooks, `/_sim` control API).
#[derive(Debug, Parser)]
#[command(name = "shopify-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The app's client id.
    #[arg(long, env = "SHOPIFY_API_KEY", default_value = DEFAULT_API_KEY)]
    api_key: String,
    /// The app's client secret.
    #[arg(long, env = "SHOPIFY_API_SECRET", default_value = DEFAULT_API_SECRET, hide_env_values = true)]
    api_secret: String,
    /// Install the app on this shop at startup (repeatable).
    #[arg(long = "shop", value_name = "SHOP")]
    shops: Vec<String>,
    /// Scopes granted to the `--shop` installs, comma-separated.
    #[arg(long, default_value = "")]
    scopes: String,
    /// Seed every `--shop` with this JSON fixture (see `fixtures/`; same shape as
    /// `POST /_sim/shops/{shop}/seed`).
    #[arg(long, value_name = "FILE")]
    seed: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let seed = match args.seed.as_deref().map(load_seed).transpose() {
        Ok(seed) => seed,
        Err(e) => {
            eprintln!("shopify-sim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let config = SimConfig {
        api_key: args.api_key,
        api_secret: args.api_secret,
        port: args.port,
        ..SimConfig::default()
    };
    let sim = match Sim::try_spawn(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("shopify-sim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let scopes: Vec<&str> = args
        .scopes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for shop in &args.shops {
        sim.install_shop(shop, &scopes);
        tracing::info!(shop, "installed");
        if let Some(seed) = &seed {
            let summary = sim.seed(shop, seed.clone());
            tracing::info!(shop, ?summary, "seeded");
        }
    }

    // Listen for the stop signals before announcing the origin: whoever reads the origin may
    // send SIGTERM at once, and a signal that arrives before the handler exists kills the
    // process instead of shutting it down.
    let stop = stop_signal();
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", sim.origin())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Whoever started us stopped listening; keep serving anyway.
        tracing::warn!("could not write the origin to stdout");
    }
    drop(stdout);

    stop.await;
    tracing::info!("shutting down");
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}

fn load_seed(path: &std::path::Path) -> Result<Seed, SimError> {
    let fail = |reason: String| SimError::Seed {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    Seed::from_json(&text).map_err(|e| fail(e.to_string()))
}

/// Ctrl-C, or SIGTERM on Unix. On Unix the handlers are installed when this is called (not when
/// the returned future is first polled); the future resolves on the first signal.
#[cfg(unix)]
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let listen = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for {name}");
            None
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "Ctrl-C");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
        }
    }
}

/// Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> impl std::future::Future<Output = ()> {
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
