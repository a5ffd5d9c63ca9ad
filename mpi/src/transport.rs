//! Point-to-point messages over a private duplicate of the caller's communicator, on raw MPI
//! calls that never block: `MPI_Isend` (kept in an outbox until `MPI_Test` says it completed) and
//! `MPI_Improbe` + `MPI_Mrecv` of a message that has already arrived. The caller waits between
//! polls with [`Backoff`] (short sleeps) instead of a blocking receive, which would spin a core.

use core::ffi::{c_int, c_void};
use std::time::Duration;

use mpi::ffi;

use crate::Error;

/// Ranks send requests and results to rank 0 with this tag.
pub(crate) const TAG_UP: c_int = 0x6d01; // within the 32767 every MPI allows
/// Rank 0 sends work and control with this tag.
pub(crate) const TAG_DOWN: c_int = 0x6d02;

fn check(rc: c_int) -> Result<(), Error> {
    if rc == ffi::MPI_SUCCESS as c_int { Ok(()) } else { Err(Error::Mpi { code: rc }) }
}

/// The byte datatype.
fn bytes_type() -> ffi::MPI_Datatype {
    // SAFETY: a constant of the rsmpi shim, initialised before main.
    unsafe { ffi::RSMPI_UINT8_T }
}

/// `MPI_COMM_WORLD`.
pub(crate) fn world() -> ffi::MPI_Comm {
    // SAFETY: as above.
    unsafe { ffi::RSMPI_COMM_WORLD }
}

/// Whether `MPI_Init` has been called (and `MPI_Finalize` not yet).
pub(crate) fn initialized() -> bool {
    let mut flag: c_int = 0;
    // SAFETY: valid at any time, even before `MPI_Init`; `flag` is writable.
    let rc = unsafe { ffi::MPI_Initialized(&mut flag) };
    let mut finalized: c_int = 0;
    // SAFETY: as above.
    let rc2 = unsafe { ffi::MPI_Finalized(&mut finalized) };
    rc == 0 && rc2 == 0 && flag != 0 && finalized == 0
}

/// A private duplicate of a communicator, with `MPI_ERRORS_RETURN`, and the sends not yet
/// completed.
pub(crate) struct Comm {
    raw: ffi::MPI_Comm,
    rank: c_int,
    size: c_int,
    outbox: Vec<(ffi::MPI_Request, Box<[u8]>)>,
}

impl Comm {
    /// Duplicates `parent` (collective over its ranks) and sets `MPI_ERRORS_RETURN` on the copy.
    ///
    /// # Safety
    /// `parent` is a valid intra-communicator and MPI is initialised.
    pub(crate) unsafe fn dup(parent: ffi::MPI_Comm) -> Result<Comm, Error> {
        // SAFETY: a zeroed handle is only an out-parameter here.
        let mut raw: ffi::MPI_Comm = unsafe { core::mem::zeroed() };
        // SAFETY: `parent` is valid (caller duty); `raw` is writable.
        check(unsafe { ffi::MPI_Comm_dup(parent, &mut raw) })?;
        let mut comm = Comm { raw, rank: 0, size: 0, outbox: Vec::new() };
        // SAFETY: `raw` is the fresh duplicate; the handler is a predefined constant.
        check(unsafe { ffi::MPI_Comm_set_errhandler(comm.raw, ffi::RSMPI_ERRORS_RETURN) })?;
        // SAFETY: `raw` is valid; the out-parameter is writable.
        check(unsafe { ffi::MPI_Comm_rank(comm.raw, &mut comm.rank) })?;
        // SAFETY: as above.
        check(unsafe { ffi::MPI_Comm_size(comm.raw, &mut comm.size) })?;
        Ok(comm)
    }

    pub(crate) fn rank(&self) -> c_int {
        self.rank
    }

    pub(crate) fn size(&self) -> c_int {
        self.size
    }

    /// Starts sending `msg` to `dest`; it completes in the background (see [`Comm::flush`]).
    pub(crate) fn send(&mut self, dest: c_int, tag: c_int, msg: Vec<u8>) -> Result<(), Error> {
        let msg = msg.into_boxed_slice();
        let count = c_int::try_from(msg.len()).map_err(|_| Error::Inval)?;
        // SAFETY: an out-parameter only.
        let mut req: ffi::MPI_Request = unsafe { core::mem::zeroed() };
        // SAFETY: `msg` stays alive (and unmoved: it is boxed) in the outbox until MPI_Test
        // reports the send complete; `req` is writable.
        check(unsafe {
            ffi::MPI_Isend(msg.as_ptr().cast::<c_void>(), count, bytes_type(), dest, tag, self.raw, &mut req)
        })?;
        self.outbox.push((req, msg));
        Ok(())
    }

    /// Completes what sends it can; true if any did.
    pub(crate) fn flush(&mut self) -> Result<bool, Error> {
        let before = self.outbox.len();
        let mut i = 0;
        while i < self.outbox.len() {
            let mut flag: c_int = 0;
            // SAFETY: the request is live (not yet completed); the status is ignored.
            check(unsafe { ffi::MPI_Test(&mut self.outbox[i].0, &mut flag, ffi::RSMPI_STATUS_IGNORE) })?;
            if flag != 0 {
                self.outbox.swap_remove(i);
            } else {
                i += 1;
            }
        }
        Ok(self.outbox.len() != before)
    }

    /// Sends not yet completed.
    pub(crate) fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// Waits (politely) until every send completed.
    pub(crate) fn drain(&mut self) -> Result<(), Error> {
        let mut backoff = Backoff::new();
        while self.pending() > 0 {
            if !self.flush()? {
                backoff.idle();
            }
        }
        Ok(())
    }

    /// A message with `tag` from `source` (`None`: any) that has arrived, with its sender.
    pub(crate) fn try_recv(&mut self, source: Option<c_int>, tag: c_int) -> Result<Option<(c_int, Vec<u8>)>, Error> {
        // SAFETY: a constant of the rsmpi shim.
        let source = source.unwrap_or(unsafe { ffi::RSMPI_ANY_SOURCE });
        let mut flag: c_int = 0;
        // SAFETY: out-parameters only.
        let mut msg: ffi::MPI_Message = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        let mut status: ffi::MPI_Status = unsafe { core::mem::zeroed() };
        // SAFETY: `raw` is valid; the out-parameters are writable.
        check(unsafe { ffi::MPI_Improbe(source, tag, self.raw, &mut flag, &mut msg, &mut status) })?;
        if flag == 0 {
            return Ok(None);
        }
        let mut count: c_int = 0;
        // SAFETY: `status` was filled by the probe.
        check(unsafe { ffi::MPI_Get_count(&status, bytes_type(), &mut count) })?;
        let mut buf = vec![0u8; usize::try_from(count).map_err(|_| Error::Inval)?];
        // SAFETY: `msg` is the matched message, received once; `buf` holds `count` bytes.
        check(unsafe {
            ffi::MPI_Mrecv(buf.as_mut_ptr().cast::<c_void>(), count, bytes_type(), &mut msg, &mut status)
        })?;
        Ok(Some((status.MPI_SOURCE, buf)))
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        // Normally empty here (every path drains before it returns). Sends still pending after
        // an MPI error are released; their buffers are leaked, as MPI may still read them.
        if self.flush().is_err() || !self.outbox.is_empty() {
            for (mut req, buf) in self.outbox.drain(..) {
                // SAFETY: a live request, released without waiting; its buffer is leaked below.
                let _ = unsafe { ffi::MPI_Request_free(&mut req) };
                Box::leak(buf);
            }
        }
        // SAFETY: our own duplicate, freed once; MPI is still initialised (a communicator must
        // not outlive MPI_Finalize: the crate's calls end before they return).
        let _ = unsafe { ffi::MPI_Comm_free(&mut self.raw) };
    }
}

/// Sleeps between polls that found nothing: 20 µs, doubling up to 100 µs during a map (each
/// poll costs a microsecond or two: about 1% of a core), up to 500 µs for a rank waiting for the
/// next map; reset on progress. (Measured on 2 cores: a 1 ms cap cost tiny maps half their
/// speed, with no CPU saved that the workers could see.)
pub(crate) struct Backoff {
    us: u64,
    max: u64,
}

impl Backoff {
    pub(crate) const MIN_US: u64 = 20;
    pub(crate) const MAX_US: u64 = 100;
    pub(crate) const IDLE_MAX_US: u64 = 500;

    pub(crate) fn new() -> Backoff {
        Backoff { us: Self::MIN_US, max: Self::MAX_US }
    }

    /// For a rank waiting between maps.
    pub(crate) fn idle_between_maps() -> Backoff {
        Backoff { us: Self::MIN_US, max: Self::IDLE_MAX_US }
    }

    pub(crate) fn reset(&mut self) {
        self.us = Self::MIN_US;
    }

    pub(crate) fn idle(&mut self) {
        std::thread::sleep(Duration::from_micros(self.us));
        self.us = (self.us * 2).min(self.max);
    }
}

/// Message words: native-endian `u64`s in front of a payload (ranks are one architecture).
pub(crate) fn words(head: &[u64], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(head.len() * 8 + payload.len());
    for w in head {
        v.extend_from_slice(&w.to_ne_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// The `i`-th word of a message (0 if it is too short: a malformed message reads as kind 0).
pub(crate) fn word(msg: &[u8], i: usize) -> u64 {
    msg.get(i * 8..i * 8 + 8).map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}
