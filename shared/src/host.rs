//! This machine's host name: as the kernel has it, for records people read,
//! and cleaned and cut short, as the readable beginning of names (a worker's
//! default name, the fleet's worker prefix, the api's callback consumer).
//! A host name is a label, never an identity: two machines may share one, so
//! every such name also carries a random id ([`crate::unique_id`]).

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
/// digits, `.`, `-` and `_`, anything else replaced by `-`, at most
/// [`ID_CHARS`] characters (the rest of a 64-character name is for the
/// random id and the worker's number).
pub fn name_for_ids() -> String {
    clean(&name())
}

/// How much of the host name goes into a name.
pub const ID_CHARS: usize = 24;

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
        .take(ID_CHARS)
        .collect();
    // What follows is `-ID`: a cut that ends in a separator would double it.
    let clean = clean.trim_end_matches(['-', '.', '_']);
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_plain_characters_and_replace_the_rest() {
        assert_eq!(clean("web-1.example_net"), "web-1.example_net");
        assert_eq!(clean("héte name:1"), "h-te-name-1");
        assert_eq!(clean(&"a".repeat(100)).len(), ID_CHARS);
        assert_eq!(clean(""), "localhost");
        assert_eq!(clean("-"), "localhost");
        assert_eq!(
            clean("verdict-prod-europe-wes-1b"),
            "verdict-prod-europe-wes",
            "a cut that ends in a separator drops it"
        );
        assert!(!name().is_empty());
    }
}
