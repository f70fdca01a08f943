//! Property tests of the value types parsed from clients and registries: image references
//! (any text parses or is an error; a reference Docker's grammar allows reads back as it was
//! written), digests, `filters` and sizes. 10,000 cases each.

use proptest::prelude::*;

use crate::{AnyReference, Digest, Filters, ImageRef, parse_size};

/// A reference Docker's grammar allows: an optional registry (with a port), lowercase path
/// components with their separators, an optional tag, an optional digest.
fn valid_reference() -> impl Strategy<Value = String> {
    let component = "[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?";
    let domain = prop_oneof![
        Just(String::new()),
        "(localhost|127\\.0\\.0\\.1|[a-z]{1,6}\\.[a-z]{2,3})(:[0-9]{2,5})?/",
    ];
    let tag = prop_oneof![Just(String::new()), ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"];
    let digest = prop_oneof![Just(String::new()), "@sha256:[0-9a-f]{64}"];
    (domain, prop::collection::vec(component, 1..4), tag, digest)
        .prop_map(|(d, path, t, g)| format!("{d}{}{t}{g}", path.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any text is a reference, an ID, or an error.
    #[test]
    fn any_text_is_a_reference_or_an_error(s in ".{0,80}|[a-zA-Z0-9:/@._-]{0,80}") {
        let _ = AnyReference::parse(&s);
        let _ = ImageRef::parse_docker_ref(&s);
        let _ = s.parse::<Digest>();
        let _ = parse_size(&s);
    }

    /// A valid reference parses, and what it prints parses to the same reference.
    #[test]
    fn valid_references_round_trip(s in valid_reference()) {
        let r = ImageRef::parse_normalized(&s);
        prop_assert!(r.is_ok(), "{s}: {r:?}");
        let r = r.unwrap_or_else(|_| unreachable!());
        let again = ImageRef::parse_normalized(&r.to_string());
        prop_assert_eq!(again.as_ref().ok(), Some(&r), "{} -> {}", s, r);
    }

    /// Any `filters` text is filters or an error, and accepted keys validate.
    #[test]
    fn any_filters_text_is_filters_or_an_error(
        s in ".{0,40}|\\{(\"[a-z]{0,5}\":(\\[(\"[a-z=]{0,5}\",?){0,2}\\]|\\{(\"[a-z]{0,4}\":(true|false),?){0,2}\\}|1|null),?){0,3}\\}"
    ) {
        if let Ok(f) = Filters::parse(&s) {
            let _ = f.validate(&["label", "name"]);
        }
    }
}
