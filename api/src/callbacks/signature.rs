//! Signing callbacks so that a receiver can check where one came from, that
//! it was not altered, and that it is not a replay:
//!
//! `X-Verdict-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC
//! (with the configured secret) of `"<t>.<job id>.<body>"`: the time of this
//! attempt and the job the `X-Verdict-Job` header names are signed with the
//! body (the scheme Stripe and Slack use, plus the job id). Each attempt is
//! signed anew, so retries carry different signatures. A receiver recomputes
//! the HMAC, compares in constant time, refuses a `t` more than five minutes
//! from its own clock (Stripe's default tolerance), and, to refuse a replay
//! inside that window too, remembers the signatures it accepted for that long
//! (docs/api.md shows it in Python).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "x-verdict-signature";

/// `t=<t>,v1=<hex>` for a callback about `job_id` sent at `t`.
pub fn sign(secret: &[u8], t: u64, job_id: &str, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, job_id, body)))
}

fn mac(secret: &[u8], t: u64, job_id: &str, body: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(job_id.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_time_the_job_and_the_body() {
        let signed = sign(b"Jefe", 1_700_000_000, "job-1", b"{}");
        assert!(signed.starts_with("t=1700000000,v1="), "{signed}");
        assert_ne!(
            signed,
            sign(b"Jefe", 1_700_000_001, "job-1", b"{}"),
            "the time is signed"
        );
        assert_ne!(
            signed,
            sign(b"Jefe", 1_700_000_000, "job-2", b"{}"),
            "the job is signed"
        );
        assert_ne!(
            signed,
            sign(b"Jefe", 1_700_000_000, "job-1", b"[]"),
            "the body is signed"
        );
    }

    #[test]
    fn matches_hmac_sha256_of_the_signed_string() {
        // RFC 4231, test case 2, as the signed string "1.x.<message>".
        let mut reference = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        reference.update(b"1.x.what do ya want for nothing?");
        let expected = hex::encode(reference.finalize().into_bytes());
        assert_eq!(
            sign(b"Jefe", 1, "x", b"what do ya want for nothing?"),
            format!("t=1,v1={expected}")
        );
    }
}
