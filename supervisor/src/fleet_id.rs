//! The fleet's id: 12 random hex digits made the first time a fleet with a
//! shared Redis (`fleet up --redis`) starts in a home, and kept in
//! `HOME/fleet-id` for every later start of that home.
//!
//! It makes the names the fleet's workers register under unique by
//! construction (`HOST-ID-worker-N`; the host name is only a readable
//! beginning, since two machines may share one), and keeps them across
//! restarts, so that a worker restarted after a crash finds its own pending
//! jobs under its name. A home copied to another machine copies the id too:
//! the copy's workers are then refused while the original's are alive
//! (`verdict_shared::queue::register`); delete the copy's `fleet-id`.

use std::fs;
use std::io::ErrorKind;

use anyhow::{Context, bail};

use crate::home::Home;

/// The id in `home`, made and stored first if there is none.
pub fn load_or_create(home: &Home) -> anyhow::Result<String> {
    let path = home.fleet_id_file();
    if let Some(id) = read(home)? {
        return Ok(id);
    }
    // Written aside and linked into place: two `fleet up` racing in one
    // home both end with the id that won, and no reader sees half an id.
    let id = verdict_shared::unique_id::short();
    if crate::private_file::create_once(&path, format!("{id}\n").as_bytes())? {
        return Ok(id);
    }
    read(home)?.with_context(|| format!("{} vanished while it was made", path.display()))
}

/// The id in `home`, if one was made.
pub fn read(home: &Home) -> anyhow::Result<Option<String>> {
    let path = home.fleet_id_file();
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let id = text.trim();
    if !is_valid(id) {
        bail!(
            "{} does not hold a fleet id (12 hex digits): delete it to have a new one made \
             (this fleet's workers then register under new names)",
            path.display()
        );
    }
    Ok(Some(id.to_owned()))
}

fn is_valid(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(&dir.path().join("home"))).unwrap();
        home.create().unwrap();
        (dir, home)
    }

    #[test]
    fn made_once_then_kept_and_private() {
        let (_dir, home) = home();
        assert_eq!(read(&home).unwrap(), None);
        let id = load_or_create(&home).unwrap();
        assert!(is_valid(&id), "{id}");
        assert_eq!(load_or_create(&home).unwrap(), id, "kept across starts");
        let meta = fs::metadata(home.fleet_id_file()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Another home, another id.
        let (_other_dir, other) = self::home();
        assert_ne!(load_or_create(&other).unwrap(), id);
        // Nothing left aside.
        let names: Vec<_> = fs::read_dir(home.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("fleet-id"))
            .collect();
        assert_eq!(names, ["fleet-id"]);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_new_identity() {
        let (_dir, home) = home();
        fs::write(home.fleet_id_file(), "not an id\n").unwrap();
        let err = load_or_create(&home).unwrap_err().to_string();
        assert!(err.contains("does not hold a fleet id"), "{err}");
        assert_eq!(
            fs::read_to_string(home.fleet_id_file()).unwrap(),
            "not an id\n"
        );
    }
}
