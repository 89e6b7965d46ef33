//! When to restart a process that exited, and when to stop trying.
//!
//! The first restart is immediate: most crashes are one-off, and the fleet is
//! short of a process until it is back. A process that keeps crashing waits
//! longer each time (100 ms, doubling, capped at 30 s) so that a broken
//! configuration does not spin the machine. A minute of health forgets the
//! streak. Independently, too many crashes within a window mark the process
//! failed: the watchdog stops restarting it and `fleet status` says so, because
//! restarting a process that cannot run only fills its log. An unattended
//! fleet still heals: after a cool-down (5 minutes, doubling while it keeps
//! failing, at most a day) a failed process is tried again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The first delayed restart waits this long.
pub const BASE_DELAY: Duration = Duration::from_millis(100);
/// No restart waits longer than this.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// A process that ran this long was healthy: its crash streak is forgotten.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a process marked failed rests before it is tried again, the
/// first time (`fleet up --failed-cooldown`).
pub const FAILED_COOLDOWN: Duration = Duration::from_secs(300);
/// The longest cool-down, however often a process failed again.
pub const MAX_FAILED_COOLDOWN: Duration = Duration::from_secs(24 * 60 * 60);

/// The cool-down after a process was marked failed for the `times`-th time
/// in a row (1: `first`): doubling, capped at [`MAX_FAILED_COOLDOWN`].
pub fn failed_cooldown(first: Duration, times: u32) -> Duration {
    let factor = 1u32 << times.saturating_sub(1).min(16);
    first.saturating_mul(factor).min(MAX_FAILED_COOLDOWN)
}

/// One process's restart bookkeeping.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Consecutive crashes since the process was last healthy.
    streak: u32,
    /// When recent crashes happened, oldest first, within the window.
    crashes: VecDeque<Instant>,
    limit: u32,
    window: Duration,
    /// The longest delay (`fleet up --max-restart-delay`, [`MAX_DELAY`] by default).
    max_delay: Duration,
}

/// What to do after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay (zero: at once).
    RestartAfter(Duration),
    /// Too many crashes in the window: give up.
    GiveUp { crashes: u32, window: Duration },
}

impl Backoff {
    /// `limit` crashes within `window` are tolerated; one more gives up.
    pub fn new(limit: u32, window: Duration) -> Backoff {
        Backoff {
            streak: 0,
            crashes: VecDeque::new(),
            limit,
            window,
            max_delay: MAX_DELAY,
        }
    }

    /// Caps every delay at `max_delay` instead of [`MAX_DELAY`].
    pub fn with_max_delay(mut self, max_delay: Duration) -> Backoff {
        self.max_delay = max_delay;
        self
    }

    /// Records a crash at `now` of a process that had been up for `uptime`.
    pub fn crashed(&mut self, now: Instant, uptime: Duration) -> Decision {
        if uptime >= HEALTHY_AFTER {
            self.streak = 0;
        }
        while self
            .crashes
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.window)
        {
            self.crashes.pop_front();
        }
        self.crashes.push_back(now);
        if self.crashes.len() as u32 > self.limit {
            return Decision::GiveUp {
                crashes: self.crashes.len() as u32,
                window: self.window,
            };
        }
        let delay = delay_for(self.streak).min(self.max_delay);
        self.streak = self.streak.saturating_add(1);
        Decision::RestartAfter(delay)
    }

    /// Records an exit that does not count as a crash (a Redis outage took
    /// the process down): it still waits, so it does not spin while Redis is
    /// away, but it moves no closer to being marked failed.
    pub fn excused(&mut self, uptime: Duration) -> Duration {
        if uptime >= HEALTHY_AFTER {
            self.streak = 0;
        }
        let delay = delay_for(self.streak.max(1)).min(self.max_delay);
        self.streak = self.streak.saturating_add(1);
        delay
    }

    /// Forgets everything (an operator's `fleet restart`).
    pub fn reset(&mut self) {
        self.streak = 0;
        self.crashes.clear();
    }
}

/// The delay before restart number `streak` (0-based) of a crash streak.
pub fn delay_for(streak: u32) -> Duration {
    if streak == 0 {
        return Duration::ZERO;
    }
    let doublings = (streak - 1).min(20);
    BASE_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_cooldown_doubles_up_to_a_day() {
        let first = Duration::from_secs(300);
        assert_eq!(failed_cooldown(first, 1), first);
        assert_eq!(failed_cooldown(first, 2), first * 2);
        assert_eq!(failed_cooldown(first, 3), first * 4);
        assert_eq!(failed_cooldown(first, 40), MAX_FAILED_COOLDOWN);
    }

    #[test]
    fn first_restart_at_once_then_doubling_to_the_cap() {
        let delays: Vec<u64> = (0..12).map(|s| delay_for(s).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [
                0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
    }

    #[test]
    fn a_healthy_minute_resets_the_streak() {
        let mut b = Backoff::new(100, Duration::from_secs(60));
        let t = Instant::now();
        let short = Duration::from_millis(10);
        assert_eq!(b.crashed(t, short), Decision::RestartAfter(Duration::ZERO));
        assert_eq!(b.crashed(t, short), Decision::RestartAfter(BASE_DELAY));
        assert_eq!(b.crashed(t, short), Decision::RestartAfter(BASE_DELAY * 2));
        assert_eq!(
            b.crashed(t, HEALTHY_AFTER),
            Decision::RestartAfter(Duration::ZERO)
        );
    }

    #[test]
    fn too_many_crashes_in_the_window_give_up_but_spread_ones_do_not() {
        let window = Duration::from_secs(60);
        let mut b = Backoff::new(3, window);
        let t = Instant::now();
        let short = Duration::from_millis(10);
        for i in 0..3 {
            assert!(matches!(
                b.crashed(t + Duration::from_secs(i), short),
                Decision::RestartAfter(_)
            ));
        }
        assert_eq!(
            b.crashed(t + Duration::from_secs(3), short),
            Decision::GiveUp { crashes: 4, window }
        );

        let mut spread = Backoff::new(3, window);
        for i in 0..10 {
            let at = t + Duration::from_secs(40 * i);
            assert!(
                matches!(spread.crashed(at, short), Decision::RestartAfter(_)),
                "crash {i}"
            );
        }
    }

    #[test]
    fn excused_exits_wait_but_never_give_up() {
        let mut b = Backoff::new(1, Duration::from_secs(60));
        for _ in 0..50 {
            assert!(b.excused(Duration::ZERO) >= BASE_DELAY);
        }
        assert_eq!(
            b.crashed(Instant::now(), Duration::ZERO),
            Decision::RestartAfter(MAX_DELAY)
        );
    }

    #[test]
    fn a_lower_cap_shortens_every_delay() {
        let cap = Duration::from_millis(250);
        let mut b = Backoff::new(1000, Duration::from_secs(60)).with_max_delay(cap);
        let t = Instant::now();
        let delays: Vec<Decision> = (0..8).map(|_| b.crashed(t, Duration::ZERO)).collect();
        assert_eq!(delays[0], Decision::RestartAfter(Duration::ZERO));
        assert_eq!(delays[2], Decision::RestartAfter(BASE_DELAY * 2));
        assert!(
            delays[3..]
                .iter()
                .all(|d| *d == Decision::RestartAfter(cap)),
            "{delays:?}"
        );
        assert_eq!(b.excused(Duration::ZERO), cap);
    }
}
