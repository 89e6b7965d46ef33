//! Every Lua script of the protocol, by the name of its step, with the hash
//! Redis knows it by: so a bench or an operator reading Redis's `SLOWLOG`
//! (where a script call is `EVALSHA <hash> ...`) can say which step it was.

use super::{
    cancel, dead_letter, dead_retry, deregister, finish, heartbeat, image_fetched, queue_sample,
    register, renew, retry, start, submit,
};

/// `(step, SHA-1 of the script)` for every script, in the order of a job's
/// life, then the workers' and the operators'.
pub fn hashes() -> Vec<(&'static str, String)> {
    [
        ("submit", submit::SUBMIT.get_hash()),
        ("start", start::START.get_hash()),
        ("image_fetched", image_fetched::IMAGE_FETCHED.get_hash()),
        ("finish", finish::FINISH.get_hash()),
        ("retry", retry::RETRY.get_hash()),
        ("dead_letter", dead_letter::DEAD_LETTER.get_hash()),
        ("cancel", cancel::CANCEL.get_hash()),
        ("renew", renew::RENEW.get_hash()),
        ("register", register::REGISTER.get_hash()),
        ("heartbeat", heartbeat::BEAT.get_hash()),
        ("deregister", deregister::DEREGISTER.get_hash()),
        ("queue_sample", queue_sample::QUEUE_SAMPLE.get_hash()),
        ("dead_retry", dead_retry::DEAD_RETRY.get_hash()),
    ]
    .into_iter()
    .map(|(step, hash)| (step, hash.to_owned()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_a_hash_of_its_own() {
        let hashes = hashes();
        let mut distinct: Vec<&str> = hashes.iter().map(|(_, hash)| hash.as_str()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), hashes.len());
        assert!(hashes.iter().all(|(_, hash)| hash.len() == 40));
    }
}
