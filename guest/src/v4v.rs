//! A small V4V client: the `v4v_op` hypercall (43, six arguments), rings
//! built on the guest's own pages, and reading messages back.
//!
//! Every layout and number comes from the `v4v-abi` crate.

use alloc::vec;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use v4v_abi::{
    op, roundup, Addr, Iov, MessageHeader, PfnListHeader, RingDataEnt, RingDataHeader, RingHeader,
    RingId, ViptablesList, ViptablesRule, HYPERVISOR_V4V_OP, MESSAGE_HEADER_SIZE, PAGE_SIZE,
    PFN_LIST_MAGIC, RING_DATA_MAGIC, RING_DATA_OFFSET, RING_MAGIC, RING_RX_PTR_OFFSET,
    RING_TX_PTR_OFFSET,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::xen::{hypercall, mm};

/// `v4v_op` with raw arguments: cmd, three pointer-sized arguments and two
/// u32s (arg4 in r8, arg5 in r9).
///
/// # Safety
/// Any pointer Xen may write through (ring, ring data, viptables list)
/// must either be invalid on purpose (Xen then fails with -EFAULT) or point
/// to memory the caller lets Xen change.
pub unsafe fn raw_op(cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    unsafe {
        hypercall::hypercall6(
            HYPERVISOR_V4V_OP,
            cmd as u64,
            a1,
            a2,
            a3,
            a4 as u64,
            a5 as u64,
        )
    }
}

fn addr_ptr(a: &Addr) -> u64 {
    a as *const Addr as u64
}

/// `send`: one message of `buf` from `src` to `dst`.
pub fn send(src: &Addr, dst: &Addr, buf: &[u8], protocol: u32) -> i64 {
    // SAFETY: src, dst and buf are live and only read by Xen.
    unsafe {
        raw_op(
            op::SEND,
            addr_ptr(src),
            addr_ptr(dst),
            buf.as_ptr() as u64,
            buf.len() as u32,
            protocol,
        )
    }
}

/// `sendv`: one message gathered from `iovs`.
pub fn sendv(src: &Addr, dst: &Addr, iovs: &[Iov], protocol: u32) -> i64 {
    // SAFETY: src, dst and the iov array are live and only read by Xen;
    // the buffers the iovs name are the caller's business (Xen only reads
    // them and fails with -EFAULT on bad ones).
    unsafe {
        raw_op(
            op::SENDV,
            addr_ptr(src),
            addr_ptr(dst),
            iovs.as_ptr() as u64,
            iovs.len() as u32,
            protocol,
        )
    }
}

/// An iov for a byte slice.
pub fn iov(buf: &[u8]) -> Iov {
    Iov {
        iov_base: buf.as_ptr() as u64,
        iov_len: buf.len() as u64,
    }
}

/// `notify` without ring data: wake queued senders of our rings.
pub fn notify_all() -> i64 {
    // SAFETY: a NULL argument is never dereferenced.
    unsafe { raw_op(op::NOTIFY, 0, 0, 0, 0, 0) }
}

/// A `v4v_ring_data` buffer: header plus entries, as one allocation.
pub struct RingData {
    buf: Vec<u64>,
    nent: usize,
}

impl RingData {
    /// Builds a request for `ents` (flags and max_message_size are output).
    pub fn new(ents: &[RingDataEnt]) -> RingData {
        Self::with_header(
            RingDataHeader {
                magic: RING_DATA_MAGIC,
                nent: ents.len() as u32,
                ..Default::default()
            },
            ents,
        )
    }

    /// Builds a request with an arbitrary header (for error tests).
    pub fn with_header(header: RingDataHeader, ents: &[RingDataEnt]) -> RingData {
        let bytes = size_of::<RingDataHeader>() + size_of_val(ents);
        let mut buf = vec![0u64; bytes.div_ceil(8)];
        let raw = buf.as_mut_slice().as_mut_bytes();
        raw[..size_of::<RingDataHeader>()].copy_from_slice(header.as_bytes());
        raw[size_of::<RingDataHeader>()..bytes].copy_from_slice(ents.as_bytes());
        RingData {
            buf,
            nent: ents.len(),
        }
    }

    /// Guest address of the structure.
    pub fn addr(&mut self) -> u64 {
        self.buf.as_mut_ptr() as u64
    }

    /// Calls `notify` with this ring data.
    pub fn notify(&mut self) -> i64 {
        // SAFETY: the buffer is ours and Xen may rewrite its entries.
        unsafe { raw_op(op::NOTIFY, self.addr(), 0, 0, 0, 0) }
    }

    /// Entry `i` as it is now (after notify: with Xen's answers).
    pub fn ent(&self, i: usize) -> RingDataEnt {
        assert!(i < self.nent);
        let off = size_of::<RingDataHeader>() + i * size_of::<RingDataEnt>();
        let raw = self.buf.as_slice().as_bytes();
        RingDataEnt::read_from_bytes(&raw[off..off + size_of::<RingDataEnt>()]).expect("entry size")
    }
}

/// `viptables_add` at `position`.
pub fn viptables_add(rule: &ViptablesRule, position: u32) -> i64 {
    // SAFETY: the rule is live and only read.
    unsafe {
        raw_op(
            op::VIPTABLES_ADD,
            rule as *const ViptablesRule as u64,
            0,
            0,
            position,
            0,
        )
    }
}

/// `viptables_del`: by `position`, or (position -1) the first rule equal to
/// `rule`, or (no rule, -1) all rules.
pub fn viptables_del(rule: Option<&ViptablesRule>, position: i32) -> i64 {
    let p = rule.map_or(0, |r| r as *const ViptablesRule as u64);
    // SAFETY: the rule, if any, is live and only read.
    unsafe { raw_op(op::VIPTABLES_DEL, p, 0, 0, position as u32, 0) }
}

/// `viptables_list` from index `start`: returns Xen's result and the rules.
pub fn viptables_list(start: u32) -> (i64, ViptablesList) {
    let mut list = ViptablesList {
        nb_rules: start,
        ..Default::default()
    };
    // SAFETY: `list` is ours; Xen writes rules and nb_rules.
    let rc = unsafe { raw_op(op::VIPTABLES_LIST, &raw mut list as u64, 0, 0, 0, 0) };
    (rc, list)
}

/// Page-aligned, zeroed pages from the heap (which lies inside the image,
/// so each page has a frame number).
pub struct Pages {
    ptr: NonNull<u8>,
    count: usize,
}

impl Pages {
    pub fn alloc(count: usize) -> Pages {
        assert!(count > 0);
        let layout = Self::layout(count);
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| alloc::alloc::handle_alloc_error(layout));
        Pages { ptr, count }
    }

    fn layout(count: usize) -> Layout {
        Layout::from_size_align(count * PAGE_SIZE, PAGE_SIZE).expect("page layout")
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn va(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Machine frame of page `i`.
    pub fn mfn(&self, i: usize) -> u64 {
        assert!(i < self.count);
        mm::mfn_of(self.va() + (i * PAGE_SIZE) as u64).expect("heap page has a frame")
    }

    pub fn mfns(&self) -> Vec<u64> {
        (0..self.count).map(|i| self.mfn(i)).collect()
    }

    /// The pages as bytes. Only for memory Xen does not write (source
    /// buffers of sends).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation is `count` pages, owned by `self`.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.count * PAGE_SIZE) }
    }

    /// Writes a ring header at the start of the first page, byte by byte
    /// (Xen may be reading it if a ring on these pages is registered).
    pub fn write_ring_header(&self, h: &RingHeader) {
        for (i, &b) in h.as_bytes().iter().enumerate() {
            // SAFETY: the first page is ours and at least 60 bytes long.
            unsafe { self.as_ptr().add(i).write_volatile(b) };
        }
    }

    /// Copies `out.len()` bytes of a ring's data area (`len` bytes from
    /// byte `start` of the pages) beginning at `off`, wrapping at `len`:
    /// how a receiver reads a message of a V4V or an Argo ring.
    pub fn read_wrapped(&self, start: usize, len: u32, off: u32, out: &mut [u8]) {
        assert!(off < len && out.len() <= len as usize);
        assert!(start + len as usize <= self.count * PAGE_SIZE);
        // SAFETY: the data area lies within the pages (checked above).
        let data = unsafe { self.as_ptr().add(start) };
        let first = out.len().min((len - off) as usize);
        let (a, b) = out.split_at_mut(first);
        // SAFETY: [off, off + first) and [0, b.len()) lie within the data
        // area; the writer published these bytes before the tx_ptr the
        // caller read with Acquire.
        unsafe {
            core::ptr::copy_nonoverlapping(data.add(off as usize), a.as_mut_ptr(), a.len());
            core::ptr::copy_nonoverlapping(data, b.as_mut_ptr(), b.len());
        }
    }

    /// As [`Pages::bytes`], writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `count` pages, owned by `self`.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr(), self.count * PAGE_SIZE) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: allocated in `alloc` with the same layout.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.count)) };
    }
}

/// A fresh ring header for `port`, taking messages from `partner`
/// (Xen fills in our domain id at register).
pub fn ring_header(port: u32, partner: u16, len: u32) -> RingHeader {
    RingHeader {
        magic: RING_MAGIC,
        id: RingId {
            addr: Addr { port, domain: 0 },
            partner,
        },
        len,
        ..Default::default()
    }
}

/// Builds a `v4v_pfn_list` (header, then `pages`) as an 8-byte aligned
/// buffer.
pub fn pfn_list(magic: u64, npage: u32, pages: &[u64]) -> Vec<u64> {
    let header = PfnListHeader {
        magic,
        npage,
        ..Default::default()
    };
    let mut buf = vec![0u64; size_of::<PfnListHeader>() / 8 + pages.len()];
    buf.as_mut_slice().as_mut_bytes()[..size_of::<PfnListHeader>()]
        .copy_from_slice(header.as_bytes());
    buf[size_of::<PfnListHeader>() / 8..].copy_from_slice(pages);
    buf
}

/// `register_ring` with raw pointers.
///
/// # Safety
/// `ring` must be invalid on purpose or a ring the caller lets Xen update.
pub unsafe fn register_raw(ring: u64, pfn_list: u64) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    unsafe { raw_op(op::REGISTER_RING, ring, pfn_list, 0, 0, 0) }
}

/// `unregister_ring` with a raw pointer.
///
/// # Safety
/// As for [`register_raw`].
pub unsafe fn unregister_raw(ring: u64) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    unsafe { raw_op(op::UNREGISTER_RING, ring, 0, 0, 0, 0) }
}

/// One message read from a ring.
#[derive(Debug)]
pub struct Message {
    pub header: MessageHeader,
    pub payload: Vec<u8>,
    /// Offset in `ring[]` where the header was.
    pub offset: u32,
}

/// A V4V ring on pages of the guest's heap. Xen writes into it while it is
/// registered, so it is only ever accessed through raw pointers.
pub struct Ring {
    pages: Pages,
    len: u32,
    registered: bool,
}

impl Ring {
    /// A ring of `len` bytes for `port`, accepting messages from `partner`,
    /// on as few pages as hold `60 + len` bytes.
    pub fn new(port: u32, partner: u16, len: u32) -> Ring {
        let npages = (RING_DATA_OFFSET + len as usize).div_ceil(PAGE_SIZE);
        Self::with_pages(port, partner, len, npages)
    }

    /// As [`Ring::new`] on `npages` pages (more than needed leaves slack).
    pub fn with_pages(port: u32, partner: u16, len: u32, npages: usize) -> Ring {
        let ring = Ring {
            pages: Pages::alloc(npages),
            len,
            registered: false,
        };
        ring.write_header(&ring_header(port, partner, len));
        ring
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn va(&self) -> u64 {
        self.pages.va()
    }

    pub fn pages(&self) -> &Pages {
        &self.pages
    }

    /// Reads the ring header as it is now.
    pub fn header(&self) -> RingHeader {
        let mut raw = [0u8; RING_DATA_OFFSET];
        // SAFETY: the first page is ours; Xen may be writing tx_ptr, which
        // the volatile byte reads tolerate.
        for (i, b) in raw.iter_mut().enumerate() {
            *b = unsafe { self.pages.as_ptr().add(i).read_volatile() };
        }
        RingHeader::read_from_bytes(&raw).expect("header size")
    }

    /// Overwrites the ring header (before registering, or to corrupt it).
    pub fn write_header(&self, h: &RingHeader) {
        self.pages.write_ring_header(h);
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: rx_ptr (20) and tx_ptr (24) are 4-byte aligned u32s in
        // the first page, shared with Xen.
        unsafe { AtomicU32::from_ptr(self.pages.as_ptr().add(off).cast::<u32>()) }
    }

    pub fn rx_ptr(&self) -> u32 {
        self.word(RING_RX_PTR_OFFSET).load(Ordering::Acquire)
    }

    pub fn tx_ptr(&self) -> u32 {
        self.word(RING_TX_PTR_OFFSET).load(Ordering::Acquire)
    }

    /// Publishes a new read position (frees the space before it).
    pub fn set_rx_ptr(&self, v: u32) {
        self.word(RING_RX_PTR_OFFSET).store(v, Ordering::Release);
    }

    /// Sets tx_ptr (only meaningful before a (re-)register).
    pub fn set_tx_ptr(&self, v: u32) {
        self.word(RING_TX_PTR_OFFSET).store(v, Ordering::Release);
    }

    /// The id as Xen wrote it back at register.
    pub fn id(&self) -> RingId {
        self.header().id
    }

    pub fn addr(&self) -> Addr {
        self.id().addr
    }

    /// The pfn list of this ring's pages.
    pub fn pfn_list(&self) -> Vec<u64> {
        let mfns = self.pages.mfns();
        pfn_list(PFN_LIST_MAGIC, mfns.len() as u32, &mfns)
    }

    /// Registers the ring with its own pages.
    pub fn register(&mut self) -> i64 {
        let list = self.pfn_list();
        // SAFETY: the ring is ours and stays allocated until it is
        // unregistered (on drop at the latest).
        let rc = unsafe { register_raw(self.va(), list.as_ptr() as u64) };
        if rc == 0 {
            self.registered = true;
        }
        rc
    }

    pub fn unregister(&mut self) -> i64 {
        // SAFETY: the ring is ours.
        let rc = unsafe { unregister_raw(self.va()) };
        if rc == 0 {
            self.registered = false;
        }
        rc
    }

    /// Copies `out.len()` bytes from `ring[]` at `off`, wrapping at `len`.
    pub fn read_data(&self, off: u32, out: &mut [u8]) {
        self.pages
            .read_wrapped(RING_DATA_OFFSET, self.len, off, out);
    }

    /// Bytes between `ring[len]` and the end of the last page (slack).
    pub fn slack(&self) -> (*mut u8, usize) {
        let used = RING_DATA_OFFSET + self.len as usize;
        let total = self.pages.count() * PAGE_SIZE;
        // SAFETY: `used <= total` by construction of the ring.
        (unsafe { self.pages.as_ptr().add(used) }, total - used)
    }

    /// Whether a message is waiting (`rx_ptr != tx_ptr`).
    pub fn has_message(&self) -> bool {
        self.rx_ptr() != self.tx_ptr()
    }

    /// Takes the next message and advances rx_ptr past it. `Ok(None)` when
    /// the ring is empty; `Err` when the ring contents break the ABI.
    pub fn recv(&mut self) -> Result<Option<Message>, alloc::string::String> {
        let rx = self.rx_ptr();
        let mut payload = Vec::new();
        Ok(self.recv_into(&mut payload)?.map(|header| Message {
            header,
            payload,
            offset: rx,
        }))
    }

    /// As [`Ring::recv`], with the payload copied into `payload` (resized
    /// to fit; reusing one buffer saves an allocation per message).
    pub fn recv_into(
        &mut self,
        payload: &mut Vec<u8>,
    ) -> Result<Option<MessageHeader>, alloc::string::String> {
        let rx = self.rx_ptr();
        let tx = self.tx_ptr();
        if rx == tx {
            return Ok(None);
        }
        if tx >= self.len || !tx.is_multiple_of(16) {
            return Err(alloc::format!("tx_ptr {tx} invalid (len {})", self.len));
        }
        if rx >= self.len || !rx.is_multiple_of(16) {
            return Err(alloc::format!("rx_ptr {rx} invalid (len {})", self.len));
        }
        let mut raw = [0u8; MESSAGE_HEADER_SIZE];
        self.read_data(rx, &mut raw);
        let header = MessageHeader::read_from_bytes(&raw).expect("header size");
        let mlen = header.len;
        if (mlen as usize) < MESSAGE_HEADER_SIZE || mlen > self.len - 16 {
            return Err(alloc::format!("message at {rx}: bad len {mlen}"));
        }
        let plen = mlen as usize - MESSAGE_HEADER_SIZE;
        payload.resize(plen, 0);
        if plen > 0 {
            self.read_data((rx + 16) % self.len, payload);
        }
        let next = (rx as u64 + 16 + roundup(plen as u64)) % self.len as u64;
        self.set_rx_ptr(next as u32);
        Ok(Some(header))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.registered {
            // Xen must let go of the pages before the heap reuses them. If
            // it refuses, leak them rather than hand out pages Xen writes.
            if self.unregister() != 0 {
                let pages = core::mem::replace(&mut self.pages, Pages::alloc(1));
                core::mem::forget(pages);
            }
        }
    }
}

/// A ring of any length on few pages: a header page of its own, and a data
/// area that cycles over a set of shared pages (Xen pins and maps a frame
/// as often as a ring lists it). For rings whose contents nobody reads:
/// the starvation scenario's and the worst-case measurements' 16 MiB rings.
/// The data pages are borrowed for as long as the ring lives.
pub struct AliasedRing<'a> {
    header: Pages,
    registered: bool,
    _data: core::marker::PhantomData<&'a Pages>,
}

impl<'a> AliasedRing<'a> {
    /// Registers a ring of `len` bytes for `port` (any sender) on a new
    /// header page and `data`'s pages; `Err(rc)` when Xen refuses.
    pub fn register(port: u32, len: u32, data: &'a Pages) -> Result<AliasedRing<'a>, i64> {
        let header = Pages::alloc(1);
        header.write_ring_header(&ring_header(port, v4v_abi::DOMID_ANY, len));
        let npage = (RING_DATA_OFFSET + len as usize).div_ceil(PAGE_SIZE);
        let mut frames = Vec::with_capacity(npage);
        frames.push(header.mfn(0));
        for i in 1..npage {
            frames.push(data.mfn((i - 1) % data.count()));
        }
        let list = pfn_list(PFN_LIST_MAGIC, npage as u32, &frames);
        // SAFETY: the header page is ours and stays allocated while the
        // ring is registered (unregistered on drop); Xen writes only the
        // ring's words and data area, in our pages.
        let rc = unsafe { register_raw(header.va(), list.as_ptr() as u64) };
        if rc != 0 {
            return Err(rc);
        }
        Ok(AliasedRing {
            header,
            registered: true,
            _data: core::marker::PhantomData,
        })
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: rx_ptr (20) and tx_ptr (24) are aligned u32s of the
        // header page, shared with Xen.
        unsafe { AtomicU32::from_ptr(self.header.as_ptr().add(off).cast::<u32>()) }
    }

    /// Frees whatever is in the ring unread; whether there was anything.
    pub fn consume(&self) -> bool {
        let tx = self.word(RING_TX_PTR_OFFSET).load(Ordering::Acquire);
        let rx = self.word(RING_RX_PTR_OFFSET);
        if rx.load(Ordering::Relaxed) == tx {
            return false;
        }
        rx.store(tx, Ordering::Release);
        true
    }

    /// The ring's address (our domain, as Xen wrote it back).
    pub fn addr(&self) -> Addr {
        let mut raw = [0u8; 6];
        for (i, b) in raw.iter_mut().enumerate() {
            // SAFETY: the id's address lies at bytes 8..14 of our header page.
            *b = unsafe { self.header.as_ptr().add(8 + i).read_volatile() };
        }
        Addr::read_from_bytes(&raw).expect("address size")
    }

    pub fn unregister(&mut self) -> i64 {
        // SAFETY: the ring is ours.
        let rc = unsafe { unregister_raw(self.header.va()) };
        if rc == 0 {
            self.registered = false;
        }
        rc
    }
}

impl Drop for AliasedRing<'_> {
    fn drop(&mut self) {
        // As for `Ring`: pages Xen may still write are leaked, not reused.
        if self.registered && self.unregister() != 0 {
            let header = core::mem::replace(&mut self.header, Pages::alloc(1));
            core::mem::forget(header);
        }
    }
}
