//! Strings across the boundary: reading C strings, handing Rust strings to C, and freeing them.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

/// Turn text into a C string the caller frees with [`lunar_string_free`]. A NUL inside the text
/// (possible in a daemon message) is replaced, so nothing is cut short silently.
pub(crate) fn into_c_string(text: String) -> *mut c_char {
    let bytes = text.replace('\0', "\u{fffd}").into_bytes();
    // No NUL is left, so `CString::new` cannot fail; the fallback is unreachable.
    CString::new(bytes).unwrap_or_default().into_raw()
}

/// Store `text` in `*slot` if the caller asked for it (`slot` not NULL).
///
/// # Safety
/// `slot` is NULL or valid for writing one pointer.
pub(crate) unsafe fn give(slot: *mut *mut c_char, text: String) {
    if !slot.is_null() {
        // SAFETY: the caller guarantees a non-NULL `slot` is writable.
        unsafe { *slot = into_c_string(text) };
    }
}

/// Set `*slot` to NULL if the caller passed a slot.
///
/// # Safety
/// `slot` is NULL or valid for writing one pointer.
pub(crate) unsafe fn clear(slot: *mut *mut c_char) {
    if !slot.is_null() {
        // SAFETY: the caller guarantees a non-NULL `slot` is writable.
        unsafe { *slot = std::ptr::null_mut() };
    }
}

/// Borrow a C string as UTF-8; `what` names the argument in the error message.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn read_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, String> {
    if ptr.is_null() {
        return Err(format!("{what} is NULL"));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and lifetime.
    let c_str = unsafe { CStr::from_ptr(ptr) };
    c_str
        .to_str()
        .map_err(|e| format!("{what} is not valid UTF-8: {e}"))
}

/// Free a string returned by liblunar (`result_json`, `error_message`). NULL is ignored.
///
/// # Safety
/// `text` is NULL or a string returned by liblunar that has not been freed yet.
#[no_mangle]
pub unsafe extern "C" fn lunar_string_free(text: *mut c_char) {
    if text.is_null() {
        return;
    }
    // SAFETY: the caller guarantees `text` came from `CString::into_raw` in this library and
    // is freed once. Dropping a CString does not panic.
    drop(unsafe { CString::from_raw(text) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_inside_text_is_replaced_not_truncated() {
        let ptr = into_c_string("a\0b".to_string());
        // SAFETY: `ptr` was just returned by `into_c_string`.
        let text = unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string();
        // SAFETY: freed once.
        unsafe { lunar_string_free(ptr) };
        assert_eq!(text, "a\u{fffd}b");
    }

    #[test]
    fn read_str_names_the_argument() {
        // SAFETY: NULL is allowed.
        let err = unsafe { read_str(std::ptr::null(), "method") }.unwrap_err();
        assert_eq!(err, "method is NULL");
        let bad = c"\xff";
        // SAFETY: a static NUL-terminated string.
        let err = unsafe { read_str(bad.as_ptr(), "method") }.unwrap_err();
        assert!(err.starts_with("method is not valid UTF-8"), "{err}");
    }
}
