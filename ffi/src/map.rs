//! Host-side map resolution over the C ABI: a parsed layout handle (`lunar_map`), its device
//! names, and planning a virtual range into `struct lunar_extent`s; plus a one-shot form that
//! parses the layout on every call.

use std::os::raw::{c_char, c_int};

use lunar_volume::{Extent, PlanError};

use crate::layout_json::{parse_layout, ParsedLayout};
use crate::status::*;
use crate::strings::{clear, give, read_str};

/// One physical piece of a resolved range (`struct lunar_extent` in `lunar.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LunarExtent {
    /// Index into the map's device names.
    pub device: u32,
    /// Always 0.
    pub reserved: u32,
    pub device_offset_bytes: u64,
    pub len_bytes: u64,
    /// Offset of this piece within the resolved range.
    pub request_offset_bytes: u64,
}

const _: () = assert!(std::mem::size_of::<LunarExtent>() == 32);

impl From<Extent> for LunarExtent {
    fn from(extent: Extent) -> Self {
        LunarExtent {
            device: extent.device,
            reserved: 0,
            device_offset_bytes: extent.device_offset_bytes,
            len_bytes: extent.len_bytes,
            request_offset_bytes: extent.request_offset_bytes,
        }
    }
}

/// A parsed, validated layout (`lunar_map` in `lunar.h`, opaque to C). Immutable: one handle
/// may be used from several threads at once.
#[derive(Debug)]
pub struct LunarMap {
    parsed: ParsedLayout,
}

impl LunarMap {
    pub fn parse(layout_json: &str) -> Result<LunarMap, String> {
        parse_layout(layout_json).map(|parsed| LunarMap { parsed })
    }

    /// Resolve `[offset, offset+len)` into `out`; `Err` carries the status code.
    pub fn resolve(
        &self,
        offset_bytes: u64,
        len_bytes: u64,
        out: &mut Vec<LunarExtent>,
    ) -> Result<(), c_int> {
        let mut extents = Vec::new();
        self.parsed
            .map
            .plan(offset_bytes, len_bytes, &mut extents)
            .map_err(|PlanError::OutOfRange { .. }| LUNAR_ERR_OUT_OF_RANGE)?;
        out.extend(extents.into_iter().map(LunarExtent::from));
        Ok(())
    }
}

/// Copy `extents` to the caller's array, or report how many are needed.
///
/// # Safety
/// `out` is valid for writing `cap` extents (or `cap` is 0); `count` is valid for writing.
unsafe fn hand_out(
    extents: &[LunarExtent],
    out: *mut LunarExtent,
    cap: usize,
    count: *mut usize,
) -> c_int {
    // SAFETY: the caller guarantees `count` is writable (checked non-NULL by the callers).
    unsafe { *count = extents.len() };
    if extents.len() > cap {
        return LUNAR_ERR_BUFFER_TOO_SMALL;
    }
    if !extents.is_empty() {
        // SAFETY: `out` is non-NULL (checked by the callers when cap > 0), valid for `cap >=
        // extents.len()` elements per the caller, and cannot overlap our own Vec.
        unsafe { std::ptr::copy_nonoverlapping(extents.as_ptr(), out, extents.len()) };
    }
    LUNAR_OK
}

fn output_args_ok(out: *mut LunarExtent, cap: usize, count: *mut usize) -> bool {
    !count.is_null() && (cap == 0 || !out.is_null())
}

/// Parse and validate a layout. On success `*map_out` owns a handle for [`lunar_map_free`];
/// on failure `*error_message` (if not NULL) receives a sentence for [`lunar_string_free`].
///
/// # Safety
/// `layout_json` is NULL or a NUL-terminated string; `map_out` is writable; `error_message` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_parse(
    layout_json: *const c_char,
    map_out: *mut *mut LunarMap,
    error_message: *mut *mut c_char,
) -> c_int {
    guard(LUNAR_ERR_INTERNAL, || {
        // SAFETY: `error_message` is NULL or writable, per the contract.
        unsafe { clear(error_message) };
        if map_out.is_null() {
            // SAFETY: as above.
            unsafe { give(error_message, "map_out is NULL".to_string()) };
            return LUNAR_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: `map_out` is non-NULL and writable, per the contract.
        unsafe { *map_out = std::ptr::null_mut() };
        // SAFETY: `layout_json` is NULL or NUL-terminated, per the contract.
        let json = match unsafe { read_str(layout_json, "layout_json") } {
            Ok(json) => json,
            Err(message) => {
                // SAFETY: as above.
                unsafe { give(error_message, message) };
                return LUNAR_ERR_INVALID_ARGUMENT;
            }
        };
        match LunarMap::parse(json) {
            Ok(map) => {
                // SAFETY: `map_out` is writable; ownership of the Box passes to the caller.
                unsafe { *map_out = Box::into_raw(Box::new(map)) };
                LUNAR_OK
            }
            Err(message) => {
                // SAFETY: as above.
                unsafe { give(error_message, message) };
                LUNAR_ERR_LAYOUT
            }
        }
    })
}

/// Free a map from [`lunar_map_parse`]. NULL is ignored.
///
/// # Safety
/// `map` is NULL or a handle from `lunar_map_parse` not freed yet; no other thread uses it.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_free(map: *mut LunarMap) {
    if map.is_null() {
        return;
    }
    guard((), || {
        // SAFETY: `map` came from `Box::into_raw` in `lunar_map_parse` and is freed once.
        drop(unsafe { Box::from_raw(map) });
    });
}

/// Size of the mapped volume in bytes (0 for a NULL map).
///
/// # Safety
/// `map` is NULL or a live handle from `lunar_map_parse`.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_size_bytes(map: *const LunarMap) -> u64 {
    // SAFETY: `map` is NULL or a live handle, per the contract.
    match unsafe { map.as_ref() } {
        Some(map) => map.parsed.map.size_bytes,
        None => 0,
    }
}

/// How many devices the layout names (0 for a NULL map).
///
/// # Safety
/// `map` is NULL or a live handle from `lunar_map_parse`.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_device_count(map: *const LunarMap) -> usize {
    // SAFETY: `map` is NULL or a live handle, per the contract.
    match unsafe { map.as_ref() } {
        Some(map) => map.parsed.devices.len(),
        None => 0,
    }
}

/// Name of device `index` (as used in `lunar_extent.device`), owned by the map and valid until
/// `lunar_map_free`; NULL when `index` is out of range or `map` is NULL.
///
/// # Safety
/// `map` is NULL or a live handle from `lunar_map_parse`.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_device_name(
    map: *const LunarMap,
    index: usize,
) -> *const c_char {
    // SAFETY: `map` is NULL or a live handle, per the contract.
    let Some(map) = (unsafe { map.as_ref() }) else {
        return std::ptr::null();
    };
    map.parsed
        .devices
        .get(index)
        .map_or(std::ptr::null(), |name| name.as_ptr())
}

/// Resolve the virtual range `[offset_bytes, offset_bytes + len_bytes)` of `map` into physical
/// extents, in range order. On `LUNAR_OK`, `out[0..*count]` holds them; on
/// `LUNAR_ERR_BUFFER_TOO_SMALL`, nothing is written to `out` and `*count` is the number needed.
///
/// # Safety
/// `map` is a live handle; `out` is valid for `cap` elements (may be NULL when `cap` is 0);
/// `count` is writable.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_plan(
    map: *const LunarMap,
    offset_bytes: u64,
    len_bytes: u64,
    out: *mut LunarExtent,
    cap: usize,
    count: *mut usize,
) -> c_int {
    guard(LUNAR_ERR_INTERNAL, || {
        if !output_args_ok(out, cap, count) {
            return LUNAR_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: `count` is non-NULL and writable, per the contract.
        unsafe { *count = 0 };
        // SAFETY: `map` is NULL or a live handle, per the contract.
        let Some(map) = (unsafe { map.as_ref() }) else {
            return LUNAR_ERR_INVALID_ARGUMENT;
        };
        let mut extents = Vec::new();
        if let Err(status) = map.resolve(offset_bytes, len_bytes, &mut extents) {
            return status;
        }
        // SAFETY: `out`/`cap`/`count` checked above and valid per the contract.
        unsafe { hand_out(&extents, out, cap, count) }
    })
}

/// One-shot resolution: parse `layout_json` (see `lunar_map_parse`), resolve the range as
/// `lunar_map_plan` does, and free the map. Device indices follow the order in which device
/// names first appear in the JSON (depth first), the same order `lunar_map_device_name` uses.
///
/// # Safety
/// `layout_json` is NULL or a NUL-terminated string; `out` is valid for `cap` elements (may be
/// NULL when `cap` is 0); `count` is writable.
#[no_mangle]
pub unsafe extern "C" fn lunar_map_resolve(
    layout_json: *const c_char,
    offset_bytes: u64,
    len_bytes: u64,
    out: *mut LunarExtent,
    cap: usize,
    count: *mut usize,
) -> c_int {
    guard(LUNAR_ERR_INTERNAL, || {
        if !output_args_ok(out, cap, count) {
            return LUNAR_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: `count` is non-NULL and writable, per the contract.
        unsafe { *count = 0 };
        // SAFETY: `layout_json` is NULL or NUL-terminated, per the contract.
        let Ok(json) = (unsafe { read_str(layout_json, "layout_json") }) else {
            return LUNAR_ERR_INVALID_ARGUMENT;
        };
        let Ok(map) = LunarMap::parse(json) else {
            return LUNAR_ERR_LAYOUT;
        };
        let mut extents = Vec::new();
        if let Err(status) = map.resolve(offset_bytes, len_bytes, &mut extents) {
            return status;
        }
        // SAFETY: `out`/`cap`/`count` checked above and valid per the contract.
        unsafe { hand_out(&extents, out, cap, count) }
    })
}
