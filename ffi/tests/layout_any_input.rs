//! The layout decoder never panics: arbitrary bytes, and arbitrary JSON layouts built from the
//! schema's pieces (with wrong types, zero and huge sizes, empty members), either parse into a
//! map whose plans stay inside the volume or are refused with a message.

use lunar::map::{LunarExtent, LunarMap};
use lunar::parse_layout;
use proptest::prelude::*;
use serde_json::{json, Value};

fn any_json_layout() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        (0u64..100).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!("12")),
    ];
    let leaf = (
        prop::sample::select(vec!["a", "b", "c", ""]),
        prop::option::of(number.clone()),
        prop::option::of(number),
    )
        .prop_map(|(device, offset, size)| {
            let mut linear = serde_json::Map::new();
            linear.insert("device".into(), json!(device));
            if let Some(offset) = offset {
                linear.insert("offset_bytes".into(), offset);
            }
            if let Some(size) = size {
                linear.insert("size_bytes".into(), size);
            }
            json!({ "linear": linear })
        });
    leaf.prop_recursive(6, 32, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|members| json!({ "concat": members }))
    })
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match LunarMap::parse(text) {
        Ok(map) => {
            let size = parse_layout(text).expect("parses twice").map.size_bytes;
            let mut out: Vec<LunarExtent> = Vec::new();
            let len = size.min(4096);
            prop_assert!(map.resolve(size - len, len, &mut out).is_ok());
            prop_assert_eq!(out.iter().map(|e| e.len_bytes).sum::<u64>(), len);
            prop_assert!(map.resolve(size, 1, &mut out).is_err());
        }
        Err(message) => prop_assert!(message.starts_with("layout is not")),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_layout_json_never_panics(layout in any_json_layout()) {
        check(&layout.to_string())?;
    }
}
