//! How the pool's handles get ready for a wait over many objects (`crate::wait`): a single
//! task's job word, and a map's or an iterator's group word, armed as their own waits arm them.

use bytemuck::Pod;

use super::{AsyncResult, Chunks, Imap, ImapBytes, LIVENESS_TICK, MapAsync, MapBytesAsync, Pool};
use crate::error::Error;
use crate::sync::{Arm, Deadline};

impl Pool {
    /// Single task `j`: ready once it ended, or once the pool can no longer end it (`thorough`
    /// looks at the supervisor too, a system call).
    pub(crate) fn arm_job(&self, j: u32, thorough: bool) -> Arm<'_> {
        if self.check_creator().is_err() || thorough && !self.alive() {
            return Arm::Ready; // its get answers at once
        }
        match self.shared.job(j).arm() {
            None => Arm::Ready,
            Some((word, expected)) => Arm::Sleep { word, expected, tick: Some(LIVENESS_TICK) },
        }
    }
}

impl<'p> Chunks<'p, '_> {
    /// After the caller landed what had ended: `WAITERS` set on the group word, so that the
    /// next chunk to end wakes us; `None` if one ended meanwhile (land again).
    fn arm_group(&self, thorough: bool) -> Option<Arm<'p>> {
        let pool: &'p Pool = self.pool;
        if pool.check_creator().is_err() || thorough && !pool.alive() {
            return Some(Arm::Ready);
        }
        let group = pool.shared.group(self.group);
        let seen = group.current();
        if self.flights.iter().any(|f| pool.shared.job(f.job).outcome().is_some()) {
            return None;
        }
        let (word, expected) = group.arm_at(seen)?;
        Some(Arm::Sleep { word, expected, tick: Some(LIVENESS_TICK) })
    }
}

impl<'p> MapBytesAsync<'p> {
    /// Ready once every chunk ended (submitting the next chunks as earlier ones end, as `ready`
    /// does), or once the map cannot go on.
    pub(crate) fn arm(&mut self, thorough: bool) -> Arm<'p> {
        loop {
            match self.poll(Deadline::NOW) {
                Err(e) if e.error == Error::Timeout => {}
                _ => return Arm::Ready,
            }
            if let Some(arm) = self.run.arm_group(thorough) {
                return arm;
            }
        }
    }
}

impl<'p> ImapBytes<'p> {
    /// Ready once `next` would not block: a result (the next in order, if ordered) or a
    /// failure is there, or every item was yielded.
    pub(crate) fn arm(&mut self, thorough: bool) -> Arm<'p> {
        loop {
            let has_next = if self.ordered {
                self.ready.iter().any(|(l, k)| l.flight.start + k == self.next)
            } else {
                !self.ready.is_empty()
            };
            if has_next || self.total() == self.yielded {
                return Arm::Ready;
            }
            if self.run.fill().is_err() {
                return Arm::Ready; // `next` reports it
            }
            match self.run.land(Deadline::NOW) {
                Ok(landed) if !landed.is_empty() => {
                    self.ready.extend(landed.into_iter().map(|l| (l, 0)));
                    continue;
                }
                Ok(_) | Err(Error::Timeout) => {}
                Err(_) => return Arm::Ready,
            }
            if let Some(arm) = self.run.arm_group(thorough) {
                return arm;
            }
        }
    }
}

impl<'p, Out: Pod> AsyncResult<'p, Out> {
    /// As [`Pool::arm_job`]; `Ready` once the result was taken (`get` answers at once).
    pub(crate) fn arm(&self, thorough: bool) -> Arm<'p> {
        let pool: &'p Pool = self.pool;
        self.job.map_or(Arm::Ready, |j| pool.arm_job(j, thorough))
    }
}

impl<'p, Out: Pod> MapAsync<'p, Out> {
    /// As [`MapBytesAsync::arm`].
    pub(crate) fn arm(&mut self, thorough: bool) -> Arm<'p> {
        self.run.arm(thorough)
    }
}

impl<'p, Out: Pod> Imap<'p, Out> {
    /// As [`ImapBytes::arm`].
    pub(crate) fn arm(&mut self, thorough: bool) -> Arm<'p> {
        self.it.arm(thorough)
    }
}
