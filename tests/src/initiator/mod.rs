//! A minimal iSCSI initiator written for the tests, to move known data through lunard: the
//! libiscsi command-line tools installed here cannot write a chosen pattern and read it back.
//!
//! [`BlockClient`] is the convenient face: log in, read the capacity, read and write blocks.
//! [`raw`] drives a [`Session`] PDU by PDU, for tests of broken and hostile initiators.

pub mod keys;
pub mod pdu;
pub mod raw;
pub mod scsi;
pub mod session;

use std::net::SocketAddr;

pub use session::{check_good, CommandOutcome, InitiatorError, Session, INITIATOR_NAME};

use scsi::SENSE_KEY_UNIT_ATTENTION;

/// A command is retried this many times while it gets UNIT ATTENTION (reported once per event).
const UNIT_ATTENTION_RETRIES: usize = 4;

/// Block I/O to one LUN over one session.
pub struct BlockClient {
    session: Session,
    lun: u16,
    /// Logical block length reported by READ CAPACITY (16).
    pub block_len: u32,
    /// Number of logical blocks reported by READ CAPACITY (16).
    pub num_blocks: u64,
    /// Largest transfer of one command (Block Limits VPD), if the target reports one; longer
    /// reads and writes are split into several commands, as a host's block layer would.
    pub max_transfer_blocks: Option<u32>,
}

impl BlockClient {
    /// Logs in to `iqn` at `portal` and reads the capacity of `lun`.
    pub fn connect(portal: SocketAddr, iqn: &str, lun: u16) -> Result<BlockClient, InitiatorError> {
        let session = Session::login(portal, iqn)?;
        let mut client = BlockClient {
            session,
            lun,
            block_len: 0,
            num_blocks: 0,
            max_transfer_blocks: None,
        };
        client.run(&scsi::test_unit_ready(), &[], 0)?;
        let capacity = client.run(&scsi::read_capacity16(), &[], 32)?;
        let (num_blocks, block_len) = scsi::decode_read_capacity16(&capacity.data)
            .ok_or_else(|| InitiatorError::Protocol("short READ CAPACITY (16) data".to_string()))?;
        if block_len == 0 {
            return Err(InitiatorError::Protocol(
                "READ CAPACITY (16) reports 0-byte blocks".to_string(),
            ));
        }
        client.block_len = block_len;
        client.num_blocks = num_blocks;
        // Block Limits is optional: a target without it gets no transfer limit.
        if let Ok(limits) = client.run(&scsi::inquiry_vpd(scsi::VPD_BLOCK_LIMITS, 64), &[], 64) {
            client.max_transfer_blocks = scsi::decode_max_transfer_blocks(&limits.data);
        }
        Ok(client)
    }

    /// The keys the target answered at login.
    pub fn target_keys(&self) -> &[(String, String)] {
        &self.session.target_keys
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.num_blocks * u64::from(self.block_len)
    }

    fn run(
        &mut self,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: u32,
    ) -> Result<CommandOutcome, InitiatorError> {
        let mut attempt = 0;
        loop {
            let outcome = self.session.execute(self.lun, cdb, data_out, data_in_len)?;
            let unit_attention = outcome
                .sense
                .is_some_and(|s| s.key == SENSE_KEY_UNIT_ATTENTION);
            if unit_attention && attempt < UNIT_ATTENTION_RETRIES {
                attempt += 1;
                continue;
            }
            return check_good(outcome);
        }
    }

    /// Blocks per command: at most the target's maximum transfer length.
    fn chunk_blocks(&self, blocks: u32) -> u32 {
        self.max_transfer_blocks
            .map_or(blocks, |max| blocks.min(max))
            .max(1)
    }

    /// Reads `blocks` blocks at `lba` with READ (16), in as many commands as the target's
    /// maximum transfer length requires.
    pub fn read(&mut self, lba: u64, blocks: u32) -> Result<Vec<u8>, InitiatorError> {
        let mut data = Vec::with_capacity(self.transfer_len(blocks)? as usize);
        let mut done = 0u32;
        while done < blocks {
            let count = self.chunk_blocks(blocks - done);
            let len = self.transfer_len(count)?;
            let chunk = self.run(&scsi::read16(lba + u64::from(done), count), &[], len)?;
            data.extend_from_slice(&chunk.data);
            done += count;
        }
        Ok(data)
    }

    /// Writes `data` (a whole number of blocks) at `lba` with WRITE (16), FUA if asked, in as
    /// many commands as the target's maximum transfer length requires.
    pub fn write(&mut self, lba: u64, data: &[u8], fua: bool) -> Result<(), InitiatorError> {
        let block_len = self.block_len as usize;
        if data.is_empty() || !data.len().is_multiple_of(block_len) {
            return Err(InitiatorError::Protocol(format!(
                "a write of {} bytes is not a whole number of {block_len}-byte blocks",
                data.len()
            )));
        }
        let blocks = u32::try_from(data.len() / block_len)
            .map_err(|_| InitiatorError::Protocol("write too long".to_string()))?;
        let mut done = 0u32;
        while done < blocks {
            let count = self.chunk_blocks(blocks - done);
            let start = done as usize * block_len;
            let bytes = &data[start..start + count as usize * block_len];
            self.run(&scsi::write16(lba + u64::from(done), count, fua), bytes, 0)?;
            done += count;
        }
        Ok(())
    }

    /// SYNCHRONIZE CACHE (10) of the whole LUN.
    pub fn flush(&mut self) -> Result<(), InitiatorError> {
        self.run(&scsi::synchronize_cache10(), &[], 0)?;
        Ok(())
    }

    /// The session underneath, for PDU-level work between block operations.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Logs out.
    pub fn logout(self) -> Result<(), InitiatorError> {
        self.session.logout()
    }

    fn transfer_len(&self, blocks: u32) -> Result<u32, InitiatorError> {
        blocks.checked_mul(self.block_len).ok_or_else(|| {
            InitiatorError::Protocol(format!("{blocks} blocks overflow a transfer length"))
        })
    }
}

/// Deterministic test data for `blocks` blocks starting at `lba`: every block differs from every
/// other (its LBA and a `seed` are mixed in), so a misplaced block is caught.
pub fn pattern(seed: u64, lba: u64, blocks: u32, block_len: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(blocks as usize * block_len as usize);
    for block in 0..u64::from(blocks) {
        let mut state = (seed ^ (lba + block).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
        for _ in 0..block_len / 8 {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        bytes.resize(((block + 1) * u64::from(block_len)) as usize, 0xa5);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_blocks_are_distinct_and_repeatable() {
        let a = pattern(7, 100, 4, 512);
        assert_eq!(a.len(), 4 * 512);
        assert_eq!(a, pattern(7, 100, 4, 512));
        assert_eq!(&a[512..1024], &pattern(7, 101, 1, 512)[..]);
        assert_ne!(&a[..512], &a[512..1024]);
        assert_ne!(pattern(8, 100, 1, 512), pattern(7, 100, 1, 512));
        assert!(a.iter().any(|b| *b != 0));
    }
}
