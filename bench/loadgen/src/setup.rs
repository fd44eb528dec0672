//! Opening sessions before a run, on blocking sockets with timeouts: connect, log in, clear the
//! power-on unit attention with TEST UNIT READY, and read the LUN's capacity. Afterwards the
//! socket is switched to non-blocking for the run loop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::login::{self, LoginRequest};
use crate::pdu::Direction;
use crate::rxbuf::RxBuf;
use crate::scsi::{self, Capacity};
use crate::session::{Completion, Op, Outcome, Session, SessionShape};

/// Time a connect, a socket read or a socket write may take during set-up.
pub const SETUP_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// TEST UNIT READY attempts while the target reports unit attentions.
const UNIT_ATTENTION_RETRIES: usize = 8;
/// Our MaxRecvDataSegmentLength, and the MaxBurstLength / FirstBurstLength we offer.
pub const RECV_DATA_SEGMENT_MAX_BYTES: u32 = 256 * 1024;
pub const BURST_MAX_BYTES: u32 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("connect to {portal}: {source}")]
    Connect {
        portal: SocketAddr,
        source: std::io::Error,
    },
    #[error("session {index}: {source}")]
    Login {
        index: usize,
        source: login::LoginError,
    },
    #[error("session {index}: socket: {source}")]
    Io {
        index: usize,
        source: std::io::Error,
    },
    #[error("session {index}: {what}")]
    Protocol { index: usize, what: String },
    #[error("session {index}: {command} ended with {outcome:?}")]
    Command {
        index: usize,
        command: &'static str,
        outcome: Outcome,
    },
}

/// What every session of a run shares.
#[derive(Debug, Clone)]
pub struct SessionPlan<'a> {
    pub portal: SocketAddr,
    pub initiator_name: &'a str,
    pub target_name: &'a str,
    pub lun: [u8; 8],
    pub queue_depth: usize,
    /// Largest transfer of the run.
    pub io_bytes: usize,
    /// Distinguishes this run's ISIDs from other initiators'.
    pub isid_salt: [u8; 3],
}

/// A session ready for the run loop.
pub struct OpenSession {
    pub session: Session,
    pub stream: TcpStream,
}

/// Opens session `index`: connect, login, TEST UNIT READY until the unit attentions are gone.
pub fn open(plan: &SessionPlan<'_>, index: usize) -> Result<OpenSession, SetupError> {
    let io = |source| SetupError::Io { index, source };
    let mut stream =
        TcpStream::connect_timeout(&plan.portal, SETUP_IO_TIMEOUT).map_err(|source| {
            SetupError::Connect {
                portal: plan.portal,
                source,
            }
        })?;
    stream.set_nodelay(true).map_err(io)?;
    stream
        .set_read_timeout(Some(SETUP_IO_TIMEOUT))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(SETUP_IO_TIMEOUT))
        .map_err(io)?;
    // Room for two of the largest PDUs the target may send.
    let mut rx = RxBuf::new(2 * (RECV_DATA_SEGMENT_MAX_BYTES as usize + 4096));
    let qualifier = (index as u16).to_be_bytes();
    let negotiated = login::login(
        &mut stream,
        &mut rx,
        &LoginRequest {
            initiator_name: plan.initiator_name,
            target_name: plan.target_name,
            isid: [
                0x80,
                plan.isid_salt[0],
                plan.isid_salt[1],
                plan.isid_salt[2],
                qualifier[0],
                qualifier[1],
            ],
            recv_data_segment_max_bytes: RECV_DATA_SEGMENT_MAX_BYTES,
            burst_max_bytes: BURST_MAX_BYTES,
        },
    )
    .map_err(|source| SetupError::Login { index, source })?;
    let session = Session::new(
        SessionShape {
            lun: plan.lun,
            queue_depth: plan.queue_depth,
            // READ CAPACITY data must fit too.
            slot_buffer_bytes: plan.io_bytes.max(scsi::READ_CAPACITY_16_LEN_BYTES as usize),
            recv_data_segment_max_bytes: RECV_DATA_SEGMENT_MAX_BYTES,
        },
        negotiated,
        rx,
    );
    let mut open = OpenSession { session, stream };
    for attempt in 0.. {
        let op = Op {
            cdb: scsi::test_unit_ready(),
            direction: Direction::None,
            len_bytes: 0,
            user: 0,
        };
        let (completion, _) = command(&mut open, index, op)?;
        match completion.outcome {
            Outcome::Good => break,
            Outcome::CheckCondition {
                sense_key: Some(scsi::SENSE_KEY_UNIT_ATTENTION),
            } if attempt < UNIT_ATTENTION_RETRIES => continue,
            outcome => {
                return Err(SetupError::Command {
                    index,
                    command: "TEST UNIT READY",
                    outcome,
                })
            }
        }
    }
    Ok(open)
}

/// READ CAPACITY (16) on an open session.
pub fn read_capacity(open: &mut OpenSession, index: usize) -> Result<Capacity, SetupError> {
    let op = Op {
        cdb: scsi::read_capacity_16(),
        direction: Direction::Read,
        len_bytes: scsi::READ_CAPACITY_16_LEN_BYTES,
        user: 0,
    };
    open.session.set_keep_read_data(true);
    let result = command(open, index, op);
    open.session.set_keep_read_data(false);
    let (completion, data) = result?;
    // Some targets return fewer bytes than asked for (an underflow), which is fine here.
    let received = data
        .get(..completion.received_bytes as usize)
        .unwrap_or(&data);
    match completion.outcome {
        Outcome::Good
        | Outcome::Residual {
            underflow: true, ..
        } => Capacity::parse(received).ok_or_else(|| SetupError::Protocol {
            index,
            what: format!("unusable READ CAPACITY (16) data {received:02x?}"),
        }),
        outcome => Err(SetupError::Command {
            index,
            command: "READ CAPACITY (16)",
            outcome,
        }),
    }
}

/// Sends one command and waits for it, answering whatever else the target sends meanwhile.
fn command(
    open: &mut OpenSession,
    index: usize,
    op: Op,
) -> Result<(Completion, Vec<u8>), SetupError> {
    let io = |source| SetupError::Io { index, source };
    let protocol = |what: String| SetupError::Protocol { index, what };
    open.session
        .submit(op, Instant::now(), |_| {})
        .map_err(|e| protocol(e.to_string()))?;
    let mut done = None;
    loop {
        let pending = open.session.pending_tx();
        if !pending.is_empty() {
            open.stream.write_all(pending).map_err(io)?;
            let len = pending.len();
            open.session.advance_tx(len);
        }
        if let Some(done) = done {
            return Ok(done);
        }
        let n = open.stream.read(open.session.rx_spare()).map_err(io)?;
        if n == 0 {
            return Err(protocol("the target closed the connection".into()));
        }
        open.session.commit_rx(n);
        open.session
            .process(
                Instant::now(),
                &mut |completion: &Completion, data: &[u8]| {
                    done = Some((*completion, data.to_vec()));
                },
            )
            .map_err(|e| protocol(e.to_string()))?;
    }
}
