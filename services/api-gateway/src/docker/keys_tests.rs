use serde::Deserialize;
use serde_json::json;

use super::*;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Outer {
    name: String,
    inner: Option<Inner>,
    list: Vec<Inner>,
    by_name: Option<std::collections::HashMap<String, Inner>>,
    pair: Option<[u32; 2]>,
    #[serde(rename = "IPAM")]
    ipam: Inner,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct Inner {
    size_bytes: i64,
}

#[test]
fn the_schema_is_read_from_the_serde_definitions() {
    let inner = Schema::fields([("SizeBytes", Schema::Leaf)]);
    let s = Schema::of::<Outer>();
    assert_eq!(s.field("Name"), Some(&Schema::Leaf));
    assert_eq!(s.field("Inner"), Some(&inner));
    assert_eq!(s.field("IPAM"), Some(&inner));
    assert_eq!(s.field("List"), Some(&Schema::Seq(Box::new(inner.clone()))));
    assert_eq!(s.field("ByName"), Some(&Schema::Map(Box::new(inner))));
    assert_eq!(s.field("Pair"), Some(&Schema::Seq(Box::new(Schema::Leaf))));
}

#[test]
fn keys_in_any_case_reach_their_fields_at_every_level() {
    let o: Outer = parse(json!({
        "name": "n",
        "INNER": {"sizebytes": 1},
        "list": [{"SIZEBYTES": 2}, {"SizeBytes": 3}],
        "byname": {"Key": {"sizeBytes": 4}},
        "ipam": {"sizebytes": 5},
    }))
    .unwrap();
    assert_eq!(o.name, "n");
    assert_eq!(o.inner, Some(Inner { size_bytes: 1 }));
    assert_eq!(o.list, [Inner { size_bytes: 2 }, Inner { size_bytes: 3 }]);
    // A map's keys are data: kept as sent.
    assert_eq!(o.by_name.unwrap()["Key"], Inner { size_bytes: 4 });
    assert_eq!(o.ipam.size_bytes, 5);
}

#[test]
fn one_field_in_two_cases_is_refused_naming_both() {
    let e = parse::<Outer>(json!({"Inner": {"SizeBytes": 1, "sizebytes": 2}})).unwrap_err();
    assert!(e.contains(r#"both "SizeBytes" and "sizebytes""#), "{e}");
    // Unknown keys stay unknown: the type decides (here, deny_unknown_fields).
    let e = parse::<Outer>(json!({"Inner": {"Size": 1}})).unwrap_err();
    assert!(e.contains("Inner") && e.contains("Size"), "{e}");
}

#[test]
fn values_of_another_shape_are_left_to_the_parse() {
    let e = parse::<Outer>(json!({"list": {"SizeBytes": 1}})).unwrap_err();
    assert!(e.starts_with("invalid JSON: List:"), "{e}");
}

#[test]
fn schemas_merge_and_nest() {
    let s = Schema::of::<Inner>().with("A.B", Schema::fields([("C", Schema::Leaf)]));
    let mut v = json!({"sizebytes": 1, "a": {"b": {"c": 2}}});
    s.canonicalize(&mut v).unwrap();
    assert_eq!(v, json!({"SizeBytes": 1, "A": {"B": {"C": 2}}}));
}
