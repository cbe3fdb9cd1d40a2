//! register_ring and unregister_ring.
use super::domain::{release_ring, unpin_all, DomainState};
use super::Engine;
use crate::abi::{
    PfnListHeader, RingHeader, RingId, MAX_RING_PAGES, PAGE_SIZE, PFN_LIST_MAGIC,
    PFN_LIST_PAGES_OFFSET, RING_MAGIC,
};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::guest::GuestAddr;
use crate::lock::Mutex;
use crate::ring::geometry::RingLen;
use crate::ring::mem::{frames_needed, RingMem};
use crate::ring::{Ring, RingKey, RingState};
use alloc::vec::Vec;

/// Frame numbers read from the guest per copy while pinning.
const PFN_BATCH: usize = 64;

/// Byte offset of the ring id in a `v4v_ring`.
const RING_ID_OFFSET: u64 = 8;

impl<E: Env> Engine<E> {
    pub(super) fn register_ring(
        &self,
        env: &E,
        ring_p: GuestAddr,
        pfns_p: GuestAddr,
    ) -> Result<()> {
        let caller = env.current_domain();
        if !ring_p.0.is_multiple_of(PAGE_SIZE as u64) {
            return Err(Error::Inval);
        }
        let hdr: RingHeader = ring_p.read(env)?;
        if hdr.magic != RING_MAGIC {
            return Err(Error::Inval);
        }
        let len = RingLen::new(hdr.len).ok_or(Error::Inval)?;
        let pl: PfnListHeader = pfns_p.read(env)?;
        if pl.magic != PFN_LIST_MAGIC || pl.pad != 0 {
            return Err(Error::Inval);
        }
        let needed = frames_needed(len);
        if (pl.npage as usize) < needed || pl.npage > MAX_RING_PAGES {
            return Err(Error::Inval);
        }
        let key = RingKey {
            port: hdr.id.addr.port,
            partner: hdr.id.partner,
        };

        // The policy (the last of the caller's own checks): the ring's
        // partner or any sender, then use (when this makes the domain's
        // state). Denied, nothing has changed.
        if !env.xsm_register(key.partner) {
            return Err(Error::Perm);
        }
        let me = self.ensure_domain(env, caller)?;

        // Quota, before any pinning work (checked again when inserting).
        me.rings.read().quota_allows(key, needed)?;

        let frames = pin_frames(env, pfns_p, needed)?;
        let mem = match RingMem::map(env, frames, len) {
            Ok(m) => m,
            Err((frames, e)) => {
                unpin_all(env, frames);
                return Err(e.into());
            }
        };
        // tx_ptr is kept across a re-register unless it is invalid.
        let tx = len
            .offset(hdr.tx_ptr)
            .unwrap_or_else(|| len.restart_offset(hdr.rx_ptr));
        mem.write_tx_ptr(tx);

        // The ring's id, with the caller's real domain, goes back to the guest.
        let mut id: RingId = hdr.id;
        id.addr.domain = caller;
        if let Err(e) = ring_p
            .offset(RING_ID_OFFSET)
            .and_then(|p| p.write(env, &id))
        {
            unpin_all(env, mem.release(env));
            return Err(e.into());
        }

        let state = Mutex::try_new(RingState {
            tx,
            waiters: Vec::new(),
        });
        let Ok(state) = state else {
            unpin_all(env, mem.release(env));
            return Err(Error::NoMem);
        };
        let ring = Ring { key, mem, state };
        insert_ring(env, &me, ring)
    }
}

/// Put `ring` into the caller's table, replacing a ring with the same key
/// (whose waiters move over to the new ring).
fn insert_ring<E: Env>(env: &E, me: &DomainState<E>, ring: Ring<E>) -> Result<()> {
    let mut table = me.rings.write();
    if table.dead {
        // A dying domain makes no hypercalls; fail cleanly all the same.
        drop(table);
        release_ring(env, ring);
        return Err(Error::NoMem);
    }
    let needed = ring.mem.frame_count();
    let slot = table.index(ring.key);
    let room = table
        .quota_allows(ring.key, needed)
        .and_then(|()| match slot {
            Err(_) => table.rings.try_reserve(1).map_err(Error::from),
            Ok(_) => Ok(()),
        });
    if let Err(e) = room {
        drop(table);
        release_ring(env, ring);
        return Err(e);
    }
    let replaced_pages = slot.map_or(0, |i| table.rings[i].mem.frame_count());
    table.pages = table.pages - replaced_pages + needed;
    match slot {
        Ok(i) => {
            let old = core::mem::replace(&mut table.rings[i], ring);
            let old_state = old.state.into_inner();
            // The queued senders keep waiting on the new ring.
            table.rings[i].state.lock().waiters = old_state.waiters;
            drop(table);
            unpin_all(env, old.mem.release(env));
        }
        Err(i) => table.rings.insert(i, ring),
    }
    Ok(())
}

impl<E: Env> Engine<E> {
    pub(super) fn unregister_ring(&self, env: &E, ring_p: GuestAddr) -> Result<()> {
        let caller = env.current_domain();
        let hdr: RingHeader = ring_p.read(env)?;
        if hdr.magic != RING_MAGIC {
            return Err(Error::Inval);
        }
        let key = RingKey {
            port: hdr.id.addr.port,
            partner: hdr.id.partner,
        };
        let d = self.domain(caller).ok_or(Error::NoEnt)?;
        let mut table = d.rings.write();
        let i = table.index(key).map_err(|_| Error::NoEnt)?;
        let ring = table.rings.remove(i);
        table.pages -= ring.mem.frame_count();
        drop(table);
        // Tell the senders that waited on it: they will find it gone.
        release_ring(env, ring);
        Ok(())
    }
}

/// Read `needed` frame numbers from the guest's pfn list and pin each; on
/// any failure everything pinned so far is released.
fn pin_frames<E: Env>(env: &E, pfns_p: GuestAddr, needed: usize) -> Result<Vec<E::Frame>> {
    let mut frames: Vec<E::Frame> = Vec::new();
    frames.try_reserve_exact(needed)?;
    let mut batch = [0u64; PFN_BATCH];
    let mut done = 0;
    while done < needed {
        let n = (needed - done).min(PFN_BATCH);
        let at = pfns_p.offset(PFN_LIST_PAGES_OFFSET as u64 + 8 * done as u64);
        let read = at.and_then(|a| a.read_into(env, &mut batch[..n]));
        if let Err(e) = read {
            unpin_all(env, frames);
            return Err(e.into());
        }
        for &gfn in &batch[..n] {
            match env.pin_frame(gfn) {
                Ok(f) => frames.push(f),
                Err(e) => {
                    unpin_all(env, frames);
                    return Err(e.into());
                }
            }
        }
        done += n;
    }
    Ok(frames)
}
