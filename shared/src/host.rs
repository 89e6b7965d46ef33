//! This machine's host name: as the kernel has it, for records people read,
//! and cleaned, for names other names are built from (a worker's default
//! name, the fleet's worker prefix, the api's callback consumer).

/// The host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`), or
/// `localhost` when neither says.
pub fn name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().map(|n| n.trim().to_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// [`name`] reduced to what an identifier may hold: ASCII letters and
/// digits, `.`, `-` and `_`, anything else replaced by `-`, at most 40
/// characters.
pub fn name_for_ids() -> String {
    clean(&name())
}

fn clean(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_plain_characters_and_replace_the_rest() {
        assert_eq!(clean("web-1.example_net"), "web-1.example_net");
        assert_eq!(clean("héte name:1"), "h-te-name-1");
        assert_eq!(clean(&"a".repeat(100)).len(), 40);
        assert_eq!(clean(""), "localhost");
        assert!(!name().is_empty());
    }
}
