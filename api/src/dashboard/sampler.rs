//! The api's queue sampler: every 5 s, the jobs waiting and in flight go
//! into the minute's activity (`verdict_shared::queue::queue_sample`), so the
//! dashboard can draw the queue over the last hour. It runs in every api
//! process; a Redis that does not answer is logged once per outage and
//! sampled again at the next tick.

use verdict_shared::queue::queue_sample::{self, INTERVAL};
use verdict_shared::redis_pool::Pool;
use verdict_shared::shutdown::Shutdown;

/// Samples until `shutdown` fires.
pub async fn run(pool: Pool, mut shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.recv() => return,
        }
        let sampled = async {
            let mut conn = pool.get().await?;
            queue_sample::sample(&mut conn).await
        };
        match tokio::time::timeout(INTERVAL, sampled).await {
            Ok(Ok(_)) => {
                if failing {
                    tracing::info!("queue sampler: Redis answers again");
                }
                failing = false;
            }
            Ok(Err(err)) if !failing => {
                tracing::warn!(error = %err, "queue sampler: Redis did not answer; the dashboard's queue chart has a gap until it does");
                failing = true;
            }
            Err(_) if !failing => {
                tracing::warn!(
                    "queue sampler: Redis did not answer within 5 s; the dashboard's queue chart has a gap until it does"
                );
                failing = true;
            }
            _ => {}
        }
    }
}
