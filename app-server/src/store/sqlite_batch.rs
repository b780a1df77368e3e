//! The SQLite backend's webhook group commit, on a thread of its own.
//!
//! sqlx runs every SQLite statement on its connection's worker thread and hands the result back
//! through a channel: one thread hop per statement. A batch needs four statements (begin, shop
//! states, receipts, commit), and on a loaded two-core machine each hop waited about half
//! a millisecond for the worker thread to be scheduled, which made the single writer the limit
//! of `POST /webhooks` (measured with tests/bench/webhooks.sh). Here the whole batch runs on one
//! dedicated thread with rusqlite's cached prepared statements: one hop in, one hop out.
//!
//! It is a second connection to the same file; `BEGIN IMMEDIATE` takes SQLite's write lock up
//! front, so it and sqlx's writer connection take turns (busy timeout) and never fail halfway.

use super::rows::{admit, BatchPlan};
use super::{IgnoreReason, NewWebhook, StoreError, WebhookRecorded};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a batch waits for SQLite's write lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most often the WAL is checkpointed while webhooks keep arriving.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// The most deliveries merged from queued batches into one transaction.
const MAX_MERGED: usize = 1024;
/// WAL length (4 KiB pages, so 16 MiB) past which the writer helps start it over.
const RESTART_WAL_FRAMES: i64 = 4096;
/// WAL file size past which the writer stops taking batches until the WAL is copied back and
/// truncated: the bound that holds even when the checkpointer falls behind.
const TRUNCATE_WAL_BYTES: u64 = 32 << 20;
/// How long that truncation waits for readers still using the WAL.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);

type Reply = oneshot::Sender<Result<Vec<WebhookRecorded>, StoreError>>;

struct Request {
    batch: Vec<NewWebhook>,
    now: i64,
    reply: Reply,
}

/// Handle to the writer thread; the thread ends when the handle is dropped.
pub(super) struct BatchWriter {
    requests: mpsc::Sender<Request>,
}

fn engine_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull
            ) =>
        {
            StoreError::Unavailable(e.into())
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(e.into())
        }
        _ => StoreError::Database(e.into()),
    }
}

impl BatchWriter {
    /// Open a connection to the database file and start the thread.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        // Only this thread ever uses the connection, so SQLite's own per-call mutexes are waste.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(engine_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(engine_error)?;
        // The same settings as sqlx's connections (see sqlite.rs): WAL is a property of the file;
        // NORMAL is durable against process crashes in WAL mode.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(engine_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(engine_error)?;
        // Checkpoints are the checkpointer thread's job (below), not the commit's.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(engine_error)?;
        let checkpointer =
            rusqlite::Connection::open_with_flags(path, flags).map_err(engine_error)?;
        checkpointer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(engine_error)?;
        let (committed, commits) = mpsc::sync_channel::<()>(1);
        let restart_wal = Arc::new(AtomicBool::new(false));
        let checkpointing = Arc::new(Mutex::new(()));
        let (wanted, pass) = (restart_wal.clone(), checkpointing.clone());
        std::thread::Builder::new()
            .name("keel-sqlite-ckpt".into())
            .spawn(move || checkpoint(checkpointer, commits, &wanted, &pass))
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        let (tx, rx) = mpsc::channel::<Request>();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::thread::Builder::new()
            .name("keel-sqlite-batch".into())
            .spawn(move || {
                run(
                    conn,
                    rx,
                    committed,
                    &restart_wal,
                    &checkpointing,
                    Path::new(&wal),
                )
            })
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        Ok(Self { requests: tx })
    }

    pub(super) async fn record(
        &self,
        batch: Vec<NewWebhook>,
        now: i64,
    ) -> Result<Vec<WebhookRecorded>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request { batch, now, reply };
        let gone = || StoreError::Unavailable("the SQLite batch writer has stopped".into());
        self.requests.send(request).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn run(
    mut conn: rusqlite::Connection,
    requests: mpsc::Receiver<Request>,
    committed: mpsc::SyncSender<()>,
    restart_wal: &AtomicBool,
    checkpointing: &Mutex<()>,
    wal: &Path,
) {
    while let Ok(first) = requests.recv() {
        // Batches that queued up while the last commit ran go into one transaction: the
        // intake keeps several in flight so this thread never waits for the next one, and
        // merging them here keeps commits as large as the load allows.
        let mut group = vec![first];
        let mut size = group[0].batch.len();
        while size < MAX_MERGED {
            match requests.try_recv() {
                Ok(more) => {
                    size += more.batch.len();
                    group.push(more);
                }
                Err(_) => break,
            }
        }
        write_group(&mut conn, group);
        if restart_wal.load(Ordering::Relaxed) {
            // Only the frames committed since the checkpointer's last pass are left to copy.
            // Once they are, this connection's next transaction starts the WAL over.
            if let Ok((false, _)) = passive_checkpoint(&conn) {
                restart_wal.store(false, Ordering::Relaxed);
            }
        }
        // When the checkpointer falls behind (its fsync slow under other disk traffic, seen in
        // the test suite), every frame committed during its pass lengthens the WAL, and no
        // checkpoint can run beside that pass. Past a hard size this thread waits for the pass
        // to end, copies the rest and truncates the file: a pause of the webhook path instead
        // of a WAL without bound.
        if std::fs::metadata(wal).is_ok_and(|m| m.len() > TRUNCATE_WAL_BYTES) {
            // A second checkpoint fails at once while one runs: wait for the pass to end.
            let _pass = checkpointing.lock().unwrap_or_else(|e| e.into_inner());
            truncate_wal(&conn);
        }
        // Full means a checkpoint is already due; the checkpointer coalesces.
        let _ = committed.try_send(());
    }
}

/// Copies the WAL back into the database file after batches commit, at most every
/// [`CHECKPOINT_EVERY`], on its own connection and thread.
///
/// With SQLite's default, the commit that pushes the WAL past 1000 pages runs the checkpoint
/// itself, copying pages and syncing the file while every delivery in the batch (and the next
/// batch, queued behind the single writer) waits for its acknowledgement: about a third of the
/// writer's time in `cargo bench -p keel --bench webhook_batches`. A passive checkpoint never
/// takes the write lock, so here it runs beside the writer instead of inside it.
///
/// But SQLite starts the WAL over only when a writer begins after *every* frame was copied,
/// which a checkpoint running beside a busy writer never achieves: the file grew by about
/// 80 MB/s under load. So once the WAL passes [`RESTART_WAL_FRAMES`], this thread asks the writer
/// to run one passive checkpoint itself right after its next commit; it then finds almost
/// everything copied already. Other connections keep the default auto-checkpoint, so the WAL
/// stays bounded even when no webhook arrives (and this thread sleeps).
fn checkpoint(
    conn: rusqlite::Connection,
    commits: mpsc::Receiver<()>,
    restart_wal: &AtomicBool,
    checkpointing: &Mutex<()>,
) {
    while commits.recv().is_ok() {
        let pass = checkpointing.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = passive_checkpoint(&conn);
        drop(pass);
        match outcome {
            Ok((_, frames)) if frames >= RESTART_WAL_FRAMES => {
                restart_wal.store(true, Ordering::Relaxed)
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries it")
            }
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// Runs `wal_checkpoint(TRUNCATE)`, waiting at most [`TRUNCATE_WAIT`] for readers still using
/// the WAL: a reader that keeps it longer makes the next commit try again, rather than hold the
/// webhook path for the whole busy timeout.
fn truncate_wal(conn: &rusqlite::Connection) {
    let truncated = conn
        .busy_timeout(TRUNCATE_WAIT)
        .and_then(|()| {
            conn.query_row("pragma wal_checkpoint(truncate)", [], |row| {
                row.get::<_, i64>(0)
            })
        })
        .map(|busy| busy == 0);
    if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
        tracing::warn!(error = %e, "could not restore the batch writer's busy timeout");
    }
    match truncated {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "WAL not truncated: a reader still uses it; retrying after the next commit"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "WAL truncation failed; retrying after the next commit")
        }
    }
}

/// Runs `wal_checkpoint(PASSIVE)`: whether frames were left uncopied (a reader still uses them,
/// or another checkpoint was running), and the WAL's length in frames.
fn passive_checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<(bool, i64)> {
    conn.query_row("pragma wal_checkpoint(passive)", [], |row| {
        let (busy, log, copied): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        Ok((busy != 0 || copied < log, log))
    })
}

/// Commits the requests' deliveries in one transaction and answers each request with its share
/// of the outcomes (or the error, to all of them: nothing of the transaction was kept).
fn write_group(conn: &mut rusqlite::Connection, group: Vec<Request>) {
    // One transaction, so one `now`: the newest request's.
    let now = group.iter().map(|r| r.now).max().unwrap_or_default();
    let mut all = Vec::with_capacity(group.iter().map(|r| r.batch.len()).sum());
    let mut answers = Vec::with_capacity(group.len());
    for mut r in group {
        answers.push((r.batch.len(), r.reply));
        all.append(&mut r.batch);
    }
    // The callers may have given up; what was committed stays committed.
    match write(conn, &all, now) {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for (len, reply) in answers {
                let _ = reply.send(Ok(outcomes.by_ref().take(len).collect()));
            }
        }
        // A lone request gets the error itself, so its kind (conflict, unavailable) survives.
        Err(e) if answers.len() == 1 => {
            if let Some((_, reply)) = answers.pop() {
                let _ = reply.send(Err(e));
            }
        }
        Err(e) => {
            let why = crate::errors::error_chain(&e);
            for (_, reply) in answers {
                let _ = reply.send(Err(StoreError::Unavailable(why.clone().into())));
            }
        }
    }
}

fn write(
    conn: &mut rusqlite::Connection,
    batch: &[NewWebhook],
    now: i64,
) -> Result<Vec<WebhookRecorded>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(engine_error)?;
    let plan = BatchPlan::new(batch, false);
    let (mut inserted, mut existing, mut ignored) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    {
        let mut installed_of = tx
            .prepare_cached("select installed from shops where domain = ?1")
            .map_err(engine_error)?;
        let mut insert_receipt = tx
            .prepare_cached(
                "insert into receipts (shop, source, topic, dedupe_key, webhook_id, event_id, api_version, triggered_at,
                                       status, ignore_reason, payload, customer_id, customer_email, received_at, updated_at)
                 values (?1, 'webhook', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
                 on conflict (shop, dedupe_key) do nothing",
            )
            .map_err(engine_error)?;
        let mut existing_id = tx
            .prepare_cached("select id from receipts where shop = ?1 and dedupe_key = ?2")
            .map_err(engine_error)?;
        let mut shops: HashMap<&str, Option<bool>> = HashMap::new();
        for &i in &plan.firsts {
            let w = &batch[i];
            let installed = match shops.get(w.shop.as_str()) {
                Some(known) => *known,
                None => {
                    let found: Option<bool> = installed_of
                        .query_row(params![w.shop], |row| row.get(0))
                        .optional()
                        .map_err(engine_error)?;
                    shops.insert(w.shop.as_str(), found);
                    found
                }
            };
            let a = admit(w, installed);
            // Plain inserts and the connection's last rowid, not `RETURNING`: SQLite runs every
            // `RETURNING` statement through a temporary b-tree, which cost more than the insert.
            let added = insert_receipt
                .execute(params![
                    w.shop,
                    w.topic,
                    w.dedupe_key,
                    w.webhook_id,
                    w.event_id,
                    w.api_version,
                    w.triggered_at,
                    a.status,
                    a.ignored.map(IgnoreReason::as_str),
                    a.payload,
                    a.customer.id,
                    a.customer.email,
                    now
                ])
                .map_err(engine_error)?;
            if added == 0 {
                let id: i64 = existing_id
                    .query_row(params![w.shop, w.dedupe_key], |row| row.get(0))
                    .map_err(engine_error)?;
                existing.insert(i, id);
                continue;
            }
            inserted.insert(i, tx.last_insert_rowid());
            if let Some(reason) = a.ignored {
                ignored.insert(i, reason);
            }
            // No job here: a queued receipt is the queue entry until the next claim promotes it
            // (migrations/sqlite/0003_webhook_promotion.sql).
        }
    }
    tx.commit().map_err(engine_error)?;
    plan.outcomes(&inserted, &existing, &ignored)
}
