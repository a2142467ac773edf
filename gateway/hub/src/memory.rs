//! Giving memory back after load.
//!
//! glibc's allocator keeps the pages of freed chunks for reuse: after a
//! burst (a crowd joining, thousands of messages in flight) the process
//! stays at its peak resident size for good, although most of it is free.
//! Measured in the `irc_bridge` benchmark with 200 puppets: ~8 MB of the
//! 20 MB of anonymous memory after the load was free and kept.
//!
//! [`trim_when_idle`] watches the process's CPU time and resident size.
//! When a whole interval passed idle and the resident size grew since the
//! last trim, it asks the allocator to return its free pages
//! (`malloc_trim(3)`: every arena, every whole free page). Under load it
//! never trims: the call locks each arena while it walks it.

use std::time::Duration;

use tokio::sync::watch;

/// CPU ticks (`USER_HZ`, 100 a second on Linux) an interval may use and
/// still count as idle: 1 % of a core over the 2 s default.
const IDLE_TICKS_PER_SECOND: u64 = 1;

/// Growth of the resident size since the last trim, in pages, below which
/// trimming is not worth the walk: 1 MiB of 4 KiB pages.
const MIN_GROWTH_PAGES: u64 = 256;

/// Trim the allocator after each load, once an `interval` passes idle,
/// until `stop` turns true. Does nothing where the process's figures cannot
/// be read (no `/proc`) or the allocator is not glibc's.
pub async fn trim_when_idle(interval: Duration, mut stop: watch::Receiver<bool>) {
    if interval.is_zero() || !TRIM_AVAILABLE {
        return;
    }
    let Some(mut ticks) = cpu_ticks() else {
        return;
    };
    let idle_ticks = (IDLE_TICKS_PER_SECOND * interval.as_secs()).max(1);
    let mut since_trim = resident_pages().unwrap_or(0);
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = stop.changed() => return,
        }
        let (Some(now_ticks), Some(resident)) = (cpu_ticks(), resident_pages()) else {
            return;
        };
        let used = now_ticks.saturating_sub(ticks);
        ticks = now_ticks;
        if used > idle_ticks || resident < since_trim.saturating_add(MIN_GROWTH_PAGES) {
            // Busy, or nothing worth giving back. A shrink (memory the
            // allocator returned by itself) lowers the mark.
            since_trim = since_trim.min(resident);
            continue;
        }
        let released = trim();
        let after = resident_pages().unwrap_or(resident);
        tracing::debug!(
            released,
            before_kib = resident * 4,
            after_kib = after * 4,
            "memory: idle after load, free memory given back"
        );
        since_trim = after;
    }
}

/// The process's CPU time (user + system) in ticks, from `/proc/self/stat`.
fn cpu_ticks() -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The process's resident size in pages, from `/proc/self/statm`.
fn resident_pages() -> Option<u64> {
    parse_resident_pages(&std::fs::read_to_string("/proc/self/statm").ok()?)
}

/// Fields 14 and 15 of `proc(5)`'s `stat` line: utime and stime. The
/// command name (field 2) may hold spaces and parentheses: the fields are
/// counted from after the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user.saturating_add(system))
}

/// The second field of `proc(5)`'s `statm`: resident pages.
fn parse_resident_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_AVAILABLE: bool = true;

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const TRIM_AVAILABLE: bool = false;

/// `malloc_trim(0)`: true when glibc gave memory back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() -> bool {
    unsafe extern "C" {
        // glibc, <malloc.h>: int malloc_trim(size_t pad);
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and has no precondition; glibc
    // serializes it with every other allocator call (it is MT-Safe).
    unsafe { malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        // proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags
        // minflt cminflt majflt cmajflt utime stime ...
        let stat = "4242 (cpim gate) (x)) S 1 4242 4242 0 -1 4194560 \
                    900 0 0 0 1234 56 0 0 20 0 7 0 100 123456 789";
        assert_eq!(parse_cpu_ticks(stat), Some(1290));
        assert_eq!(parse_cpu_ticks("4242 (cpimgate) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn resident_pages_are_the_second_field() {
        assert_eq!(
            parse_resident_pages("5120 2816 1900 2400 0 900 0\n"),
            Some(2816)
        );
        assert_eq!(parse_resident_pages("5120"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        // The figures the trimmer needs exist on the machines it runs on.
        assert!(cpu_ticks().is_some());
        assert!(resident_pages().is_some_and(|p| p > 0));
    }

    #[tokio::test]
    async fn stops_when_told() {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(trim_when_idle(Duration::from_millis(10), rx));
        tokio::time::sleep(Duration::from_millis(35)).await;
        assert!(tx.send(true).is_ok());
        let ended = tokio::time::timeout(Duration::from_secs(60), task).await;
        assert!(
            matches!(ended, Ok(Ok(()))),
            "the trimmer did not stop: {ended:?}"
        );
    }
}
