//! Claiming the worker's name before it reads any job.
//!
//! The name is the worker's consumer in the group: reading under it hands
//! over that name's pending entries, so a second process under a live
//! worker's name would run the other's jobs. The register script
//! (`verdict_shared::queue::register`) claims the name when it is free, or
//! when its holder has not beaten for `STALE_AFTER` (a process that died: the
//! usual case after a `kill -9`, whose successor takes its name, and its
//! pending jobs, within `STALE_AFTER`; at once when the fleet's watchdog,
//! which reaped it, names it as the predecessor). While another process
//! holds it, this
//! one asks again every [`POLL`]: a holder whose record changes in between
//! is beating, that is alive, and this process refuses to run, with an
//! error naming it.

use std::time::Duration;

use anyhow::bail;
use verdict_shared::queue::WorkerRecord;
use verdict_shared::queue::heartbeat::STALE_AFTER;
use verdict_shared::queue::register::{Registration, Takeover, register};
use verdict_shared::reconnect::Backoff;
use verdict_shared::redis_pool::Pool;
use verdict_shared::shutdown::Shutdown;

/// How often a process waiting for a held name looks at its record again.
const POLL: Duration = Duration::from_millis(500);

/// Claims `record.name` for this process (at once from the dead
/// `predecessor`, if its supervisor named one). `Ok(true)`: it is this
/// process's; `Ok(false)`: told to stop before it was; `Err`: another live
/// process holds it (or Redis answered nonsense). Redis being away is
/// waited out.
pub(super) async fn claim_name(
    pool: &Pool,
    record: &WorkerRecord,
    predecessor: Option<&str>,
    shutdown: &mut Shutdown,
) -> anyhow::Result<bool> {
    let name = &record.name;
    let mut backoff = Backoff::new();
    let mut unreachable = false;
    let mut seen = None;
    while !shutdown.is_shutdown() {
        let claimed = async {
            let mut conn = pool.get().await?;
            register(&mut conn, record, predecessor).await
        }
        .await;
        let wait = match claimed {
            Ok(Registration::Registered) => {
                tracing::info!(worker = %name, instance = %record.instance, "registered");
                return Ok(true);
            }
            Ok(Registration::TookOver {
                previous,
                why: Takeover::Predecessor,
            }) => {
                tracing::info!(
                    worker = %name,
                    previous = %previous,
                    "registered in place of its predecessor, which the watchdog reaped; \
                     its pending jobs are this worker's now"
                );
                return Ok(true);
            }
            Ok(Registration::TookOver {
                previous,
                why: Takeover::Silent,
            }) => {
                tracing::warn!(
                    worker = %name,
                    previous = %previous,
                    stale_after_s = STALE_AFTER.as_secs(),
                    "registered in place of a process that had stopped beating; \
                     its pending jobs are this worker's now"
                );
                return Ok(true);
            }
            Ok(Registration::Held { holder, ttl_left }) => {
                match &seen {
                    None => tracing::info!(
                        worker = %name,
                        holder = %holder,
                        record_expires_in_ms = ttl_left.as_millis() as u64,
                        "this worker name is held by another process; waiting to see \
                         whether it still beats"
                    ),
                    Some(first) if first != &holder.raw => bail!(
                        "the worker name {name:?} is in use by a live process, {holder}: its \
                         heartbeat went on while this process waited, so it is alive. Two \
                         processes under one name would run each other's jobs: give this \
                         worker another --name (without --name, one is made unique), or stop \
                         the other one. Under `fleet`, a home copied from another machine \
                         shares that fleet's id: delete the copy's `fleet-id` file"
                    ),
                    Some(_) => {}
                }
                seen.get_or_insert(holder.raw);
                POLL
            }
            Err(err) if err.is_unavailable() => {
                let delay = backoff.next_delay();
                if !unreachable {
                    tracing::warn!(
                        worker = %name,
                        error = %err,
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot reach Redis to register; retrying"
                    );
                }
                unreachable = true;
                delay
            }
            Err(err) => return Err(err.into()),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => {}
        }
    }
    Ok(false)
}
