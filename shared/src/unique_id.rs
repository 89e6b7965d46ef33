//! Random ids that make names unique by construction, where a host name
//! cannot: two machines may share a host name (network namespaces, cloned
//! VMs, containers with a fixed one), and a process id is only unique on one
//! machine at one moment.
//!
//! - [`short`]: 12 hex digits (48 random bits), for names people read: a
//!   fleet's id (kept in its home), a worker started by hand, an api's
//!   callback consumer;
//! - [`instance`]: a UUIDv4 (122 random bits), made once per process, that
//!   says which process holds a worker's name.

use std::sync::OnceLock;

/// 12 lowercase hex digits, fresh on every call.
pub fn short() -> String {
    // The first 12 digits of a v4 UUID are all random (the version and
    // variant sit further on).
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// This process's instance token: made on first use, the same for the rest
/// of the process's life.
pub fn instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_hex_and_differ_and_the_instance_stays() {
        let a = short();
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, short());
        assert_eq!(instance(), instance());
        assert_eq!(instance().len(), 36);
    }
}
