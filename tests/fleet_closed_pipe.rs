//! A closed pipe ends a `fleet` command quietly (issue 19): `fleet status |
//! true` and `fleet logs | head -1` used to panic ("failed printing to
//! stdout: Broken pipe", exit 101). Now each printing command whose stdout
//! is a pipe with no reader ends as `cat` or `ls` would: killed by SIGPIPE
//! (a shell shows 141), nothing on stderr. The watchdog, the same binary,
//! keeps ignoring SIGPIPE: a control client that hangs up before its answer
//! does not kill it.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use verdict_e2e::fleet::{Fleet, alive};

/// Runs `fleet ARGS` with its stdout a pipe whose reading end is closed
/// before the command starts (so its first write finds no reader, as
/// `| true` or a `head` that has had its line does); its exit and stderr.
fn into_closed_pipe(fleet: &Fleet, args: &[&str]) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = fleet
        .command(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("fleet runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn printing_commands_end_quietly_on_a_closed_pipe_and_the_watchdog_lives_on() {
    let fleet = Fleet::new();
    let up = fleet.up(1, &[]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let watchdog = fleet.pid_in_file("watchdog").expect("watchdog.pid");

    for args in [
        &["status"][..],
        &["status", "--json"],
        &["logs"],
        &["logs", "watchdog", "-n", "5"],
        &["logs", "-f"],
        &["dead", "list"],
    ] {
        let (status, stderr) = into_closed_pipe(&fleet, args);
        assert_eq!(
            status.signal(),
            Some(libc_sigpipe()),
            "fleet {args:?} did not end by SIGPIPE: {status:?}, stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "fleet {args:?}:\n{stderr}"
        );
        assert!(stderr.trim().is_empty(), "fleet {args:?}:\n{stderr}");
    }

    // A control client that asks and hangs up before the answer: the
    // watchdog's write finds the socket closed, and it must live on.
    for _ in 0..5 {
        let mut socket =
            UnixStream::connect(fleet.home().join("run/watchdog.sock")).expect("control socket");
        socket
            .write_all(b"{\"cmd\":\"status\"}\n")
            .expect("request");
        drop(socket);
    }
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    assert!(alive(watchdog), "the watchdog died");
    assert_eq!(fleet.pid_in_file("watchdog"), Some(watchdog));
    // And with a reader, the same commands print as before.
    let run = fleet.run(&["status"]);
    assert!(run.ok(), "{}", run.output());
    assert!(run.stdout.contains("worker-0"), "{}", run.output());
}

/// SIGPIPE's number (13 on Linux).
fn libc_sigpipe() -> i32 {
    nix::sys::signal::Signal::SIGPIPE as i32
}
