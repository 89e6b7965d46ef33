//! A command's output on stdout, and how a command ends when the reader of
//! that output goes away (`fleet status | head -1`, `fleet logs | less` quit
//! early).
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe is an error, and
//! `println!` panics on it ("failed printing to stdout: Broken pipe", exit
//! 101). Restoring SIGPIPE's default action for the whole process would be
//! the usual cure, but the `fleet` binary is also the watchdog, which writes
//! to sockets and pipes that may close at any time and must never die of it.
//! So SIGPIPE stays ignored, and only a write to *stdout* that finds the pipe
//! closed ends the process: quietly, by SIGPIPE's default action, as `cat`,
//! `ls` or `grep` end there (the shell's status 141). A failed write to a
//! socket stays an error to handle.
//!
//! [`outln!`](crate::outln) and [`out!`](crate::out) replace `println!` and
//! `print!`; [`Stdout`] is a writer for code that takes one.

use std::io::{self, Write};

/// Writes `args` to stdout and flushes; a closed stdout ends the process
/// ([`end_as_closed_pipe`]), any other failure too, with a message.
pub fn print(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(err) = out.write_fmt(args).and_then(|()| out.flush()) {
        give_up(err);
    }
}

/// `println!` that ends the process quietly when stdout is a closed pipe.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that ends the process quietly when stdout is a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!($($arg)*))
    };
}

/// Stdout as a writer whose writes never fail with a closed pipe: the
/// process ends instead ([`end_as_closed_pipe`]). Other errors are returned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().write(buf).inspect_err(end_if_closed)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush().inspect_err(end_if_closed)
    }
}

fn end_if_closed(err: &io::Error) {
    if err.kind() == io::ErrorKind::BrokenPipe {
        end_as_closed_pipe();
    }
}

fn give_up(err: io::Error) -> ! {
    end_if_closed(&err);
    eprintln!("cannot write to stdout: {err}");
    std::process::exit(1)
}

/// Ends the process as SIGPIPE's default action would have: killed by
/// SIGPIPE, nothing printed. Only for a closed stdout (see the module).
pub fn end_as_closed_pipe() -> ! {
    // SAFETY: signal, sigemptyset, sigaddset, pthread_sigmask and raise are
    // async-signal-safe libc calls on valid arguments; nothing in this
    // process relies on SIGPIPE being ignored after this point, since it
    // ends here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGPIPE);
    }
    // Not reached unless the signal could not be delivered: the same status
    // as the shell would show.
    std::process::exit(128 + libc::SIGPIPE)
}
