//! verdict's Lua scripts share two beginnings, each written once and
//! prepended here (Redis scripts cannot include one another):
//!
//! - [`JOB_ENTRY`] (`lua/job_entry.lua`), for the scripts a worker runs on a
//!   job it read from the jobs stream (start, finish, dead-letter): with the
//!   same keys and arguments, they drop the stream entry of a job whose record
//!   is gone or that already ended.
//! - [`JOB_END`] (`lua/job_end.lua`), for the scripts that end a job (finish,
//!   dead-letter, cancel): Redis's clock, the result TTL, and the announcement
//!   (the callbacks-stream entry and the events-channel message).

use redis::Script;

/// `lua/job_entry.lua`: what a script run on a jobs-stream entry starts with.
pub(crate) const JOB_ENTRY: &str = include_str!("lua/job_entry.lua");

/// `lua/job_end.lua`: what a script that ends a job starts with.
pub(crate) const JOB_END: &str = include_str!("lua/job_end.lua");

/// A script: the shared `beginnings`, in order, followed by `body`.
pub(crate) fn job_script(beginnings: &[&str], body: &str) -> Script {
    Script::new(&format!("{}{body}", beginnings.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_beginnings_come_first_in_order() {
        let body = "return refuse_gone_or_ended('skip')";
        let script = job_script(&[JOB_ENTRY, JOB_END], body);
        // Scripts are identified by their hash: the body alone, or the same
        // parts in another order, would be another script.
        assert_eq!(
            script.get_hash(),
            Script::new(&format!("{JOB_ENTRY}{JOB_END}{body}")).get_hash()
        );
        assert_ne!(script.get_hash(), Script::new(body).get_hash());
        assert_ne!(
            script.get_hash(),
            job_script(&[JOB_END, JOB_ENTRY], body).get_hash()
        );
    }
}
