use std::process::ExitCode;

pub async fn run() -> ExitCode {
    let (database, _) = match crate::config::database_from_env() {
        Ok(d) => d,
        Err(problems) => {
            for line in &problems.0 {
                eprintln!("keel: {line}");
            }
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(crate::config::LogFormat::Human);
    let store = match crate::store::connect(database.url(), 2).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "keel: cannot open the database: {}",
                crate::errors::error_chain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    match store.migrate().await {
        Ok(()) => {
            println!("keel: migrations are current ({})", store.backend());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keel: migration failed: {}", crate::errors::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
