//! Words that name people. ImageNet has no person class, so a sentence about
//! a man, a crowd or a portrait is checked against the face detector's
//! findings instead of the classifier's (see `docs/rule.md`).
//!
//! A fixed vocabulary: nouns for people (singular and plural), roles and
//! personal pronouns (not "they": things are "they" too). The sentence
//! encoder alone cannot tell them apart reliably ("man" is less like "a
//! person" than "the" is, by cosine).

/// Sorted, so that lookups are a binary search (checked by a test).
const PERSON_WORDS: [&str; 145] = [
    "actor",
    "actors",
    "actress",
    "adult",
    "adults",
    "astronaut",
    "astronauts",
    "athlete",
    "athletes",
    "audience",
    "author",
    "babies",
    "baby",
    "barista",
    "boy",
    "boyfriend",
    "boys",
    "bride",
    "brother",
    "businessman",
    "businesswoman",
    "cameraman",
    "chef",
    "child",
    "children",
    "cook",
    "couple",
    "crowd",
    "crowds",
    "customer",
    "customers",
    "dad",
    "dancer",
    "dancers",
    "daughter",
    "diver",
    "divers",
    "doctor",
    "doctors",
    "driver",
    "drivers",
    "emperor",
    "face",
    "faces",
    "families",
    "family",
    "farmer",
    "farmers",
    "father",
    "friend",
    "friends",
    "gentleman",
    "gentlemen",
    "girl",
    "girlfriend",
    "girls",
    "grandfather",
    "grandmother",
    "groom",
    "guy",
    "guys",
    "he",
    "her",
    "herself",
    "him",
    "himself",
    "his",
    "human",
    "humans",
    "husband",
    "infant",
    "kid",
    "kids",
    "king",
    "ladies",
    "lady",
    "man",
    "men",
    "mom",
    "monk",
    "monks",
    "mother",
    "musician",
    "musicians",
    "nurse",
    "nurses",
    "officer",
    "officers",
    "owner",
    "owners",
    "parent",
    "parents",
    "passenger",
    "passengers",
    "pedestrian",
    "pedestrians",
    "people",
    "person",
    "persons",
    "photographer",
    "photographers",
    "pilot",
    "pilots",
    "player",
    "players",
    "police",
    "policeman",
    "portrait",
    "portraits",
    "queen",
    "rider",
    "riders",
    "sailor",
    "sailors",
    "she",
    "singer",
    "sister",
    "soldier",
    "soldiers",
    "somebody",
    "someone",
    "son",
    "spectators",
    "student",
    "students",
    "surfer",
    "swimmer",
    "swimmers",
    "teacher",
    "teachers",
    "team",
    "teenager",
    "teenagers",
    "toddler",
    "tourist",
    "tourists",
    "visitor",
    "visitors",
    "waiter",
    "waitress",
    "wife",
    "woman",
    "women",
    "worker",
    "workers",
];

/// Whether `word` (lowercased, as `words::words` gives it) names a person;
/// a possessive ("person's", "women's") counts as its noun.
pub fn is_person_word(word: &str) -> bool {
    let noun = word
        .strip_suffix("'s")
        .or_else(|| word.strip_suffix('\''))
        .unwrap_or(word);
    PERSON_WORDS.binary_search(&noun).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_and_their_possessives_are_people_things_are_not() {
        for w in [
            "man", "women", "crowd", "person's", "she", "riders", "portrait",
        ] {
            assert!(is_person_word(w), "{w}");
        }
        for w in ["cat", "cup", "the", "manhole", "helmet", "s", ""] {
            assert!(!is_person_word(w), "{w}");
        }
    }

    #[test]
    fn the_vocabulary_is_sorted_without_duplicates() {
        assert!(PERSON_WORDS.windows(2).all(|w| w[0] < w[1]));
    }
}
