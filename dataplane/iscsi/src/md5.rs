//! MD5 (RFC 1321), the only hash CHAP_A=5 uses. It is used for CHAP responses only, where the
//! RFC 1994 construction `MD5(identifier || secret || challenge)` still is the interoperable
//! choice; nothing here relies on MD5's collision resistance.

/// Bytes of an MD5 digest.
pub(crate) const MD5_LEN_BYTES: usize = 16;

const BLOCK_LEN_BYTES: usize = 64;

/// Per-round shift amounts.
const SHIFTS: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// `floor(abs(sin(i + 1)) * 2^32)`, RFC 1321 §3.4.
const SINES: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// An MD5 computation fed in pieces.
#[derive(Clone)]
pub(crate) struct Md5 {
    state: [u32; 4],
    buffer: [u8; BLOCK_LEN_BYTES],
    buffered_len: usize,
    total_len_bytes: u64,
}

impl Md5 {
    pub fn new() -> Md5 {
        Md5 {
            state: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476],
            buffer: [0; BLOCK_LEN_BYTES],
            buffered_len: 0,
            total_len_bytes: 0,
        }
    }

    pub fn update(&mut self, mut input: &[u8]) {
        self.total_len_bytes = self.total_len_bytes.wrapping_add(input.len() as u64);
        if self.buffered_len > 0 {
            let take = (BLOCK_LEN_BYTES - self.buffered_len).min(input.len());
            self.buffer[self.buffered_len..self.buffered_len + take]
                .copy_from_slice(&input[..take]);
            self.buffered_len += take;
            input = &input[take..];
            if self.buffered_len < BLOCK_LEN_BYTES {
                return;
            }
            let block = self.buffer;
            self.compress(&block);
            self.buffered_len = 0;
        }
        let mut blocks = input.chunks_exact(BLOCK_LEN_BYTES);
        for block in &mut blocks {
            let mut whole = [0u8; BLOCK_LEN_BYTES];
            whole.copy_from_slice(block);
            self.compress(&whole);
        }
        let rest = blocks.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; MD5_LEN_BYTES] {
        let bit_len = self.total_len_bytes.wrapping_mul(8);
        self.update(&[0x80]);
        while self.buffered_len != BLOCK_LEN_BYTES - 8 {
            self.update(&[0]);
        }
        self.update(&bit_len.to_le_bytes());
        let mut out = [0u8; MD5_LEN_BYTES];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    fn compress(&mut self, block: &[u8; BLOCK_LEN_BYTES]) {
        let mut words = [0u32; 16];
        for (word, bytes) in words.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let [mut a, mut b, mut c, mut d] = self.state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(SINES[i])
                .wrapping_add(words[g])
                .rotate_left(SHIFTS[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (state, value) in self.state.iter_mut().zip([a, b, c, d]) {
            *state = state.wrapping_add(value);
        }
    }
}

/// MD5 of the concatenation of `parts`.
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; MD5_LEN_BYTES] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1321_test_suite() {
        let vectors: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in vectors {
            assert_eq!(hex(&md5(&[input.as_bytes()])), expected, "{input:?}");
        }
    }

    #[test]
    fn block_boundaries() {
        // 55, 56 and 64 bytes put the length in the same, the next, or a fresh block.
        assert_eq!(
            hex(&md5(&[&[b'a'; 55]])),
            "ef1772b6dff9a122358552954ad0df65"
        );
        assert_eq!(
            hex(&md5(&[&[b'a'; 56]])),
            "3b0c8ac703f828b04c6c197006d17218"
        );
        assert_eq!(
            hex(&md5(&[&[b'a'; 64]])),
            "014842d480b571495a4a0363793f7367"
        );
    }

    #[test]
    fn rfc1994_chap_response_shape() {
        // MD5(identifier || secret || challenge), fed in one piece or three.
        let whole = md5(&[&[0x2a, b's', b'e', b'c', 1, 2, 3]]);
        let pieces = md5(&[&[0x2a], b"sec", &[1, 2, 3]]);
        assert_eq!(whole, pieces);
    }

    proptest! {
        #[test]
        fn split_points_do_not_change_the_digest(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cut_a in 0usize..300,
            cut_b in 0usize..300,
        ) {
            let a = cut_a.min(data.len());
            let b = cut_b.min(data.len()).max(a);
            prop_assert_eq!(
                md5(&[&data]),
                md5(&[&data[..a], &data[a..b], &data[b..]])
            );
        }
    }
}
