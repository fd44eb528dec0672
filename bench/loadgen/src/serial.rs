//! 32-bit serial number arithmetic (RFC 1982), as iSCSI compares CmdSN, MaxCmdSN and StatSN.

/// `a < b` in serial arithmetic.
pub fn lt(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) as i32) > 0
}

/// `a <= b` in serial arithmetic.
pub fn le(a: u32, b: u32) -> bool {
    a == b || lt(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_wraps_around() {
        assert!(lt(1, 2));
        assert!(!lt(2, 1));
        assert!(!lt(5, 5));
        assert!(le(5, 5));
        assert!(lt(u32::MAX, 0));
        assert!(lt(u32::MAX - 3, 4));
        assert!(!lt(4, u32::MAX - 3));
        assert!(le(u32::MAX, 1));
    }
}
