//! The guest side of the simulation: what a guest driver does, written once
//! for host tests, the fuzz target and the benchmarks.
//!
//! [`Host`] is a simulated machine running the engine; [`Guest`] is one
//! domain's driver with a private scratch area for hypercall arguments;
//! [`GuestRing`] is a receive ring laid out in the domain's own pages.
use super::Sim;
use crate::abi::{
    op, Addr, Iov, MessageHeader, PfnListHeader, RingDataEnt, RingDataHeader, RingHeader, RingId,
    ViptablesList, ViptablesRule, PAGE_SIZE, PFN_LIST_MAGIC, RING_DATA_ENT_OFFSET, RING_DATA_MAGIC,
    RING_DATA_OFFSET, RING_MAGIC, RING_RX_PTR_OFFSET, RING_TX_PTR_OFFSET,
};
use crate::engine::Engine;
use crate::env::DomId;
use core::cell::Cell;
use std::vec;
use std::vec::Vec;
use zerocopy::{FromBytes, IntoBytes};

/// A simulated host: the engine over a simulated hypervisor.
pub struct Host {
    pub sim: Sim,
    pub engine: Engine<Sim>,
}

impl Host {
    pub fn new(doms: &[DomId], pages: usize) -> Host {
        Host {
            sim: Sim::new(doms, pages),
            engine: Engine::try_new().expect("engine"),
        }
    }

    /// One hypercall made by `dom`.
    #[allow(clippy::too_many_arguments)]
    pub fn call(&self, dom: DomId, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
        self.sim.as_dom(dom, || {
            super::with_continuations((cmd, a1, a2, a3, a4, a5), |(c, a1, a2, a3, a4, a5)| {
                self.engine.hypercall(&self.sim, c, a1, a2, a3, a4, a5)
            })
        })
    }

    /// Xen destroys domain `dom`.
    pub fn destroy(&self, dom: DomId) {
        self.engine.domain_destroy(&self.sim, dom);
    }

    /// A driver for `dom` with `scratch_pages` pages for arguments.
    pub fn guest(&self, dom: DomId, scratch_pages: usize) -> Guest {
        let pfn = self.sim.alloc_pages(dom, scratch_pages);
        Guest {
            dom,
            scratch: Sim::va(pfn),
            size: scratch_pages * PAGE_SIZE,
            used: Cell::new(0),
        }
    }

    /// The engine's debug dump as a string.
    pub fn dump(&self) -> std::string::String {
        let mut s = std::string::String::new();
        self.engine.dump(&self.sim, &mut s).expect("dump");
        s
    }
}

/// One domain's driver.
pub struct Guest {
    pub dom: DomId,
    scratch: u64,
    size: usize,
    used: Cell<usize>,
}

/// A message read out of a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub source: Addr,
    pub protocol: u32,
    pub payload: Vec<u8>,
}

impl Guest {
    /// Start a new hypercall's arguments.
    fn reset(&self) {
        self.used.set(0);
    }

    /// Place bytes in scratch memory (16-byte aligned); returns their address.
    pub fn put_bytes(&self, host: &Host, b: &[u8]) -> u64 {
        let at = self.used.get().next_multiple_of(16);
        assert!(at + b.len() <= self.size, "guest scratch too small");
        self.used.set(at + b.len());
        host.sim.write(self.dom, self.scratch + at as u64, b);
        self.scratch + at as u64
    }

    pub fn put<T: IntoBytes + zerocopy::Immutable>(&self, host: &Host, v: &T) -> u64 {
        self.put_bytes(host, v.as_bytes())
    }

    pub fn get<T: FromBytes + IntoBytes>(&self, host: &Host, va: u64) -> T {
        let mut v = T::new_zeroed();
        host.sim.read(self.dom, va, v.as_mut_bytes());
        v
    }

    pub fn addr(&self, port: u32) -> Addr {
        Addr {
            port,
            domain: self.dom,
        }
    }

    /// send from `src` (which may lie about its domain) to `dst`.
    pub fn send_from(&self, host: &Host, src: Addr, dst: Addr, payload: &[u8], proto: u32) -> i64 {
        self.reset();
        let s = self.put(host, &src);
        let d = self.put(host, &dst);
        let b = self.put_bytes(host, payload);
        host.call(self.dom, op::SEND, s, d, b, payload.len() as u32, proto)
    }

    /// send from this domain's `port` to `dst`.
    pub fn send(&self, host: &Host, port: u32, dst: Addr, payload: &[u8], proto: u32) -> i64 {
        self.send_from(host, self.addr(port), dst, payload, proto)
    }

    /// sendv with one iov per part.
    pub fn sendv(&self, host: &Host, port: u32, dst: Addr, parts: &[&[u8]], proto: u32) -> i64 {
        self.reset();
        let s = self.put(host, &self.addr(port));
        let d = self.put(host, &dst);
        let iovs: Vec<Iov> = parts
            .iter()
            .map(|p| Iov {
                iov_base: self.put_bytes(host, p),
                iov_len: p.len() as u64,
            })
            .collect();
        let i = self.put_bytes(host, iovs.as_bytes());
        host.call(self.dom, op::SENDV, s, d, i, iovs.len() as u32, proto)
    }

    /// sendv with raw iovs (addresses as given).
    pub fn sendv_raw(&self, host: &Host, port: u32, dst: Addr, iovs: &[Iov], proto: u32) -> i64 {
        self.reset();
        let s = self.put(host, &self.addr(port));
        let d = self.put(host, &dst);
        let i = self.put_bytes(host, iovs.as_bytes());
        host.call(self.dom, op::SENDV, s, d, i, iovs.len() as u32, proto)
    }

    /// notify with no ring data.
    pub fn notify_null(&self, host: &Host) -> i64 {
        host.call(self.dom, op::NOTIFY, 0, 0, 0, 0, 0)
    }

    /// notify asking about `(ring, space_required)` pairs; returns the
    /// result and the entries as Xen wrote them back.
    pub fn notify(&self, host: &Host, q: &[(Addr, u32)]) -> (i64, Vec<RingDataEnt>) {
        let at = self.ring_data(host, q);
        let rc = host.call(self.dom, op::NOTIFY, at, 0, 0, 0, 0);
        let ents = (0..q.len())
            .map(|i| {
                self.get::<RingDataEnt>(host, at + RING_DATA_ENT_OFFSET as u64 + 16 * i as u64)
            })
            .collect();
        (rc, ents)
    }

    /// A `v4v_ring_data` asking about `(ring, space_required)` pairs, laid
    /// out in the scratch area (which it resets); its guest address.
    pub fn ring_data(&self, host: &Host, q: &[(Addr, u32)]) -> u64 {
        self.reset();
        let hdr = RingDataHeader {
            magic: RING_DATA_MAGIC,
            nent: q.len() as u32,
            ..Default::default()
        };
        let mut bytes = hdr.as_bytes().to_vec();
        for &(ring, space_required) in q {
            bytes.extend_from_slice(
                RingDataEnt {
                    ring,
                    space_required,
                    ..Default::default()
                }
                .as_bytes(),
            );
        }
        self.put_bytes(host, &bytes)
    }

    pub fn viptables_add(&self, host: &Host, rule: ViptablesRule, position: u32) -> i64 {
        self.reset();
        let r = self.put(host, &rule);
        host.call(self.dom, op::VIPTABLES_ADD, r, 0, 0, position, 0)
    }

    /// viptables_del; `rule = None` passes NULL.
    pub fn viptables_del(&self, host: &Host, rule: Option<ViptablesRule>, position: i32) -> i64 {
        self.reset();
        let r = rule.map_or(0, |r| self.put(host, &r));
        host.call(self.dom, op::VIPTABLES_DEL, r, 0, 0, position as u32, 0)
    }

    /// viptables_list from index `start`; the result and the rules copied.
    pub fn viptables_list(&self, host: &Host, start: u32) -> (i64, Vec<ViptablesRule>) {
        self.reset();
        let l = ViptablesList {
            nb_rules: start,
            ..Default::default()
        };
        let at = self.put(host, &l);
        let rc = host.call(self.dom, op::VIPTABLES_LIST, at, 0, 0, 0, 0);
        let out: ViptablesList = self.get(host, at);
        let n = if rc == 0 { out.nb_rules as usize } else { 0 };
        (rc, out.rules[..n.min(out.rules.len())].to_vec())
    }

    /// Lay out (not yet register) a ring of `len` bytes in fresh pages.
    pub fn ring(&self, host: &Host, port: u32, partner: DomId, len: u32) -> GuestRing {
        let npages = (RING_DATA_OFFSET + len as usize).div_ceil(PAGE_SIZE);
        let first = host.sim.alloc_pages(self.dom, npages);
        let list_pages = (40 + 8 * npages).div_ceil(PAGE_SIZE);
        let list_pfn = host.sim.alloc_pages(self.dom, list_pages);
        let r = GuestRing {
            dom: self.dom,
            va: Sim::va(first),
            list_va: Sim::va(list_pfn),
            first_pfn: first,
            npages,
            len,
            id: RingId {
                addr: Addr {
                    port,
                    domain: self.dom,
                },
                partner,
            },
        };
        r.write_header(host, RING_MAGIC, len, 0, 0);
        let list = PfnListHeader {
            magic: PFN_LIST_MAGIC,
            npage: npages as u32,
            ..Default::default()
        };
        let mut bytes = list.as_bytes().to_vec();
        for p in 0..npages {
            bytes.extend_from_slice(&Sim::gfn(self.dom, first + p).to_le_bytes());
        }
        host.sim.write(self.dom, r.list_va, &bytes);
        r
    }
}

/// A ring laid out in a guest's pages.
pub struct GuestRing {
    pub dom: DomId,
    /// The ring header (`v4v_ring *`), page aligned.
    pub va: u64,
    /// The `v4v_pfn_list`.
    pub list_va: u64,
    pub first_pfn: usize,
    pub npages: usize,
    pub len: u32,
    pub id: RingId,
}

impl GuestRing {
    pub fn write_header(&self, host: &Host, magic: u64, len: u32, rx: u32, tx: u32) {
        let h = RingHeader {
            magic,
            id: self.id,
            len,
            rx_ptr: rx,
            tx_ptr: tx,
            reserved: [0; 4],
        };
        host.sim.write(self.dom, self.va, h.as_bytes());
    }

    pub fn register(&self, host: &Host) -> i64 {
        host.call(self.dom, op::REGISTER_RING, self.va, self.list_va, 0, 0, 0)
    }

    pub fn unregister(&self, host: &Host) -> i64 {
        host.call(self.dom, op::UNREGISTER_RING, self.va, 0, 0, 0, 0)
    }

    pub fn addr(&self) -> Addr {
        Addr {
            port: { self.id.addr.port },
            domain: self.dom,
        }
    }

    pub fn header(&self, host: &Host) -> RingHeader {
        let mut h = RingHeader::default();
        host.sim.read(self.dom, self.va, h.as_mut_bytes());
        h
    }

    pub fn rx(&self, host: &Host) -> u32 {
        host.sim
            .read_u32(self.dom, self.va + RING_RX_PTR_OFFSET as u64)
    }

    pub fn tx(&self, host: &Host) -> u32 {
        host.sim
            .read_u32(self.dom, self.va + RING_TX_PTR_OFFSET as u64)
    }

    pub fn set_rx(&self, host: &Host, rx: u32) {
        host.sim
            .write_u32(self.dom, self.va + RING_RX_PTR_OFFSET as u64, rx);
    }

    /// Read `n` bytes of the data area at `off`, wrapping.
    pub fn read_data(&self, host: &Host, off: u32, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut o = off as usize;
        for b in out.iter_mut() {
            let mut x = [0u8];
            host.sim
                .read(self.dom, self.va + (RING_DATA_OFFSET + o) as u64, &mut x);
            *b = x[0];
            o = (o + 1) % self.len as usize;
        }
        out
    }

    /// Take the next message, as a receiving driver does: read it at
    /// `rx_ptr` and move `rx_ptr` past it. `None` when the ring is empty.
    pub fn recv(&self, host: &Host) -> Option<Msg> {
        let (rx, tx) = (self.rx(host), self.tx(host));
        if rx == tx {
            return None;
        }
        // Data written before tx_ptr moved is visible after reading tx_ptr.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let h = MessageHeader::read_from_bytes(&self.read_data(host, rx, 16)).expect("16 bytes");
        let plen = (h.len as usize)
            .checked_sub(16)
            .expect("message len below 16");
        let payload = self.read_data(host, (rx + 16) % self.len, plen);
        let next = (rx as u64 + 16 + crate::abi::roundup(plen as u64)) % self.len as u64;
        // The message is read before the space is handed back.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.set_rx(host, next as u32);
        Some(Msg {
            source: h.source,
            protocol: h.protocol,
            payload,
        })
    }
}
