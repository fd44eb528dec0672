//! The map-resolution functions called through their C signatures: results, the two-call
//! "how many extents" pattern, and every refusal (NULL pointers, bad layouts, out of range).

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr::{null, null_mut};

use lunar::map::{
    lunar_map_device_count, lunar_map_device_name, lunar_map_free, lunar_map_parse, lunar_map_plan,
    lunar_map_resolve, lunar_map_size_bytes, LunarExtent, LunarMap,
};
use lunar::strings::lunar_string_free;
use lunar::*;

const LAYOUT: &str = r#"{"concat":[
    {"linear":{"device":"sdb","offset_bytes":4096,"size_bytes":1000}},
    {"concat":[{"linear":{"device":"sdc","size_bytes":500}},
               {"linear":{"device":"sdb","offset_bytes":0,"size_bytes":24}}]}]}"#;

fn extent(
    device: u32,
    device_offset_bytes: u64,
    len_bytes: u64,
    request_offset_bytes: u64,
) -> LunarExtent {
    LunarExtent {
        device,
        reserved: 0,
        device_offset_bytes,
        len_bytes,
        request_offset_bytes,
    }
}

/// Parse through the C entry point; Err carries the status and the message.
fn parse(json: &str) -> Result<*mut LunarMap, (i32, String)> {
    let json = CString::new(json).unwrap();
    let mut map = null_mut();
    let mut message: *mut c_char = null_mut();
    // SAFETY: valid string and writable slots.
    let status = unsafe { lunar_map_parse(json.as_ptr(), &mut map, &mut message) };
    if status == LUNAR_OK {
        assert!(message.is_null());
        return Ok(map);
    }
    assert!(map.is_null());
    assert!(!message.is_null());
    // SAFETY: a string from the library, freed once below.
    let text = unsafe { CStr::from_ptr(message) }
        .to_str()
        .unwrap()
        .to_string();
    // SAFETY: freed once.
    unsafe { lunar_string_free(message) };
    Err((status, text))
}

fn plan(map: *const LunarMap, offset: u64, len: u64, cap: usize) -> (i32, usize, Vec<LunarExtent>) {
    let mut out = vec![extent(99, 99, 99, 99); cap];
    let mut count = usize::MAX;
    // SAFETY: `out` has `cap` elements, `count` is writable, `map` is live.
    let status = unsafe { lunar_map_plan(map, offset, len, out.as_mut_ptr(), cap, &mut count) };
    (status, count, out)
}

#[test]
fn plan_resolves_across_members_and_names_devices() {
    let map = parse(LAYOUT).unwrap();
    // SAFETY: `map` is live until freed at the end.
    unsafe {
        assert_eq!(lunar_map_size_bytes(map), 1524);
        assert_eq!(lunar_map_device_count(map), 2);
        assert_eq!(
            CStr::from_ptr(lunar_map_device_name(map, 0)).to_str(),
            Ok("sdb")
        );
        assert_eq!(
            CStr::from_ptr(lunar_map_device_name(map, 1)).to_str(),
            Ok("sdc")
        );
        assert!(lunar_map_device_name(map, 2).is_null());
    }
    let (status, count, out) = plan(map, 900, 610, 4);
    assert_eq!(status, LUNAR_OK);
    assert_eq!(count, 3);
    assert_eq!(
        &out[..3],
        &[
            extent(0, 4996, 100, 0),
            extent(1, 0, 500, 100),
            extent(0, 0, 10, 600)
        ]
    );
    assert_eq!(out[3], extent(99, 99, 99, 99), "nothing written past count");
    // SAFETY: freed once.
    unsafe { lunar_map_free(map) };
}

#[test]
fn too_small_array_reports_the_count_needed_and_writes_nothing() {
    let map = parse(LAYOUT).unwrap();
    let (status, count, out) = plan(map, 0, 1524, 2);
    assert_eq!(status, LUNAR_ERR_BUFFER_TOO_SMALL);
    assert_eq!(count, 3);
    assert_eq!(out, vec![extent(99, 99, 99, 99); 2]);
    // Asking with no array at all.
    let mut count = 0;
    // SAFETY: cap 0 with NULL out is allowed; `count` is writable.
    let status = unsafe { lunar_map_plan(map, 0, 1524, null_mut(), 0, &mut count) };
    assert_eq!((status, count), (LUNAR_ERR_BUFFER_TOO_SMALL, 3));
    // Zero-length ranges need no array.
    // SAFETY: as above.
    let status = unsafe { lunar_map_plan(map, 1524, 0, null_mut(), 0, &mut count) };
    assert_eq!((status, count), (LUNAR_OK, 0));
    // SAFETY: freed once.
    unsafe { lunar_map_free(map) };
}

#[test]
fn out_of_range_and_null_arguments_are_refused() {
    let map = parse(LAYOUT).unwrap();
    assert_eq!(plan(map, 1000, 525, 8).0, LUNAR_ERR_OUT_OF_RANGE);
    assert_eq!(plan(map, u64::MAX, 2, 8).0, LUNAR_ERR_OUT_OF_RANGE);
    assert_eq!(plan(null(), 0, 1, 8).0, LUNAR_ERR_INVALID_ARGUMENT);
    let mut count = 0;
    // SAFETY: NULL pointers are part of what the functions must refuse.
    unsafe {
        assert_eq!(
            lunar_map_plan(map, 0, 1, null_mut(), 4, &mut count),
            LUNAR_ERR_INVALID_ARGUMENT
        );
        let mut out = [LunarExtent::default(); 4];
        assert_eq!(
            lunar_map_plan(map, 0, 1, out.as_mut_ptr(), 4, null_mut()),
            LUNAR_ERR_INVALID_ARGUMENT
        );
        assert_eq!(lunar_map_size_bytes(null()), 0);
        assert_eq!(lunar_map_device_count(null()), 0);
        assert!(lunar_map_device_name(null(), 0).is_null());
        lunar_map_free(null_mut());
        lunar_string_free(null_mut());
        lunar_map_free(map);
    }
}

#[test]
fn parse_explains_bad_layouts() {
    let (status, message) =
        parse(r#"{"concat":[{"linear":{"device":"a","size_bytes":1}},{"concat":[]}]}"#)
            .unwrap_err();
    assert_eq!(status, LUNAR_ERR_LAYOUT);
    assert_eq!(
        message,
        "layout is not usable: layout node root[1]: concat has no members"
    );
    let (status, message) = parse("{\"linear\":").unwrap_err();
    assert_eq!(status, LUNAR_ERR_LAYOUT);
    assert!(
        message.starts_with("layout is not valid layout JSON"),
        "{message}"
    );

    let mut map = null_mut();
    let mut message: *mut c_char = null_mut();
    // SAFETY: NULL layout must be refused; slots are writable.
    let status = unsafe { lunar_map_parse(null(), &mut map, &mut message) };
    assert_eq!(status, LUNAR_ERR_INVALID_ARGUMENT);
    // SAFETY: message is a library string, freed once.
    unsafe {
        assert_eq!(CStr::from_ptr(message).to_str(), Ok("layout_json is NULL"));
        lunar_string_free(message);
    }
    // Without an error slot, and without a map slot.
    let json = CString::new("[]").unwrap();
    // SAFETY: NULL error slot is allowed; NULL map slot must be refused.
    unsafe {
        assert_eq!(
            lunar_map_parse(json.as_ptr(), &mut map, null_mut()),
            LUNAR_ERR_LAYOUT
        );
        assert_eq!(
            lunar_map_parse(json.as_ptr(), null_mut(), null_mut()),
            LUNAR_ERR_INVALID_ARGUMENT
        );
    }
    // Not UTF-8.
    let bad = c"{\"linear\":{\"device\":\"\xff\",\"size_bytes\":1}}";
    // SAFETY: valid NUL-terminated string.
    let status = unsafe { lunar_map_parse(bad.as_ptr(), &mut map, null_mut()) };
    assert_eq!(status, LUNAR_ERR_INVALID_ARGUMENT);
}

#[test]
fn one_shot_resolve_matches_the_handle() {
    let json = CString::new(LAYOUT).unwrap();
    let mut out = [LunarExtent::default(); 4];
    let mut count = 0;
    // SAFETY: valid string, array of 4, writable count.
    let status =
        unsafe { lunar_map_resolve(json.as_ptr(), 1499, 25, out.as_mut_ptr(), 4, &mut count) };
    assert_eq!(status, LUNAR_OK);
    assert_eq!(&out[..count], &[extent(1, 499, 1, 0), extent(0, 0, 24, 1)]);

    let bad = CString::new(r#"{"linear":{"device":"d"}}"#).unwrap();
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            lunar_map_resolve(bad.as_ptr(), 0, 1, out.as_mut_ptr(), 4, &mut count),
            LUNAR_ERR_LAYOUT
        );
        assert_eq!(
            lunar_map_resolve(json.as_ptr(), 0, 1525, out.as_mut_ptr(), 4, &mut count),
            LUNAR_ERR_OUT_OF_RANGE
        );
        assert_eq!(
            lunar_map_resolve(null(), 0, 1, out.as_mut_ptr(), 4, &mut count),
            LUNAR_ERR_INVALID_ARGUMENT
        );
    }
}
