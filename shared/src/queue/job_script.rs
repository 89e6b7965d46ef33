//! The Lua scripts a worker runs on a job it read from the jobs stream
//! (start, finish, dead-letter) begin the same way: with the same keys and
//! arguments, they drop the stream entry of a job whose record is gone or that
//! already ended. That shared beginning lives once, in `lua/job_entry.lua`, and
//! is prepended to each script here (Redis scripts cannot include one another).

use redis::Script;

/// A job script: `lua/job_entry.lua` followed by `body`.
pub(crate) fn job_script(body: &str) -> Script {
    Script::new(&format!("{}{body}", include_str!("lua/job_entry.lua")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_beginning_comes_first() {
        let script = job_script("return refuse_gone_or_ended('skip')");
        // Scripts are identified by their hash: the body alone would differ.
        assert_ne!(
            script.get_hash(),
            Script::new("return refuse_gone_or_ended('skip')").get_hash()
        );
    }
}
