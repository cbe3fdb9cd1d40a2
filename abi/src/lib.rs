//! The V4V guest ABI, as `../shared/V4V-ABI.md` states it.
//!
//! This crate is the single source of truth for every number and layout a
//! guest sees: the hypervisor engine, the test guests and the tools all use
//! it, and the C header `v4v.h` installed into Xen is checked against it
//! (`make abi-check`). Every structure is `repr(C, packed)` and its size and
//! field offsets are asserted at compile time against the ABI tables, so a
//! layout change here cannot go unnoticed.
//!
//! The structures derive `zerocopy` traits so that bytes copied out of guest
//! memory can be parsed without `unsafe`.
#![no_std]

use static_assertions::const_assert_eq;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Hypercall number of `v4v_op` (free in Xen 4.17 and 4.20; Argo keeps 39).
pub const HYPERVISOR_V4V_OP: u32 = 43;
/// Global VIRQ raised in a domain when one of its rings received data or
/// when space it waited for became free.
pub const VIRQ_V4V: u32 = 14;

/// Sub-operations (`cmd`, first hypercall argument).
pub mod op {
    pub const REGISTER_RING: u32 = 1;
    pub const UNREGISTER_RING: u32 = 2;
    pub const SEND: u32 = 3;
    pub const NOTIFY: u32 = 4;
    pub const SENDV: u32 = 5;
    pub const VIPTABLES_ADD: u32 = 6;
    pub const VIPTABLES_DEL: u32 = 7;
    pub const VIPTABLES_LIST: u32 = 8;
}

/// Negative return values are Xen errno values (the same numbers as Linux
/// on x86). The hypercall returns `-errno`.
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const ENOENT: i64 = 2;
    pub const EAGAIN: i64 = 11;
    pub const ENOMEM: i64 = 12;
    pub const EFAULT: i64 = 14;
    pub const EINVAL: i64 = 22;
    pub const ENOSPC: i64 = 28;
    pub const ENOSYS: i64 = 38;
    pub const ENOBUFS: i64 = 105;
    pub const ENOTCONN: i64 = 107;

    /// Every errno a V4V operation may return.
    pub const ALL: [i64; 10] = [
        EPERM, ENOENT, EAGAIN, ENOMEM, EFAULT, EINVAL, ENOSPC, ENOSYS, ENOBUFS, ENOTCONN,
    ];
}

pub const RING_MAGIC: u64 = 0xdf69_77f2_31ab_d910;
pub const PFN_LIST_MAGIC: u64 = 0x91dd_6159_045b_302d;
pub const RING_DATA_MAGIC: u64 = 0x4ce4_d30f_bc82_e92a;

pub const PROTO_DGRAM: u32 = 0x3c2c_1db8;
pub const PROTO_STREAM: u32 = 0x70f6_a8e5;

/// "Any domain" (also "none"); as a ring partner: any sender may send.
pub const DOMID_ANY: u16 = 0x7fff;
/// Second domain wildcard accepted in viptables rules (Xen's DOMID_INVALID).
pub const DOMID_WILDCARD: u16 = 0x7ff4;
/// Port wildcard in viptables rules.
pub const PORT_ANY: u32 = 0xffff_ffff;
pub const PORT_NONE: u32 = 0;

/// Messages occupy 16-byte slots.
pub const SLOT: u32 = 16;
/// Round a length up to the 16-byte slot size (in u64 so it cannot overflow).
pub const fn roundup(a: u64) -> u64 {
    (a + 15) & !15
}
pub const MAX_RING_SIZE: u32 = 16 * 1024 * 1024;
pub const MIN_RING_SIZE: u32 = 48;
pub const MAX_MSG_SIZE: u32 = MAX_RING_SIZE - 16 - 16;
pub const MAXIOV: u32 = 128;
pub const MAXENT: u32 = 4096;
pub const VIPTABLES_LIST_SIZE: usize = 8;
/// Largest `npage` a pfn list may carry: enough for 60 + MAX_RING_SIZE bytes.
pub const MAX_RING_PAGES: u32 = 4097;
pub const PAGE_SIZE: usize = 4096;

bitflags::bitflags! {
    /// `v4v_ring_data_ent.flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RingDataFlags: u16 {
        const EMPTY = 1;
        const EXISTS = 2;
        const PENDING = 4;
        const SUFFICIENT = 8;
    }
}

bitflags::bitflags! {
    /// Stream header flags, guest-to-guest; Xen never interprets them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct StreamFlags: u32 {
        const SYN = 1;
        const ACK = 2;
        const RST = 4;
        const PING = 0x100;
        const PONG = 0x200;
    }
}

/// `v4v_addr`: a port in a domain.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct Addr {
    pub port: u32,
    pub domain: u16,
}

/// `v4v_ring_id`: the key of a ring.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct RingId {
    pub addr: Addr,
    pub partner: u16,
}

/// `v4v_iov`: one piece of a gathered message (guest virtual address).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct Iov {
    pub iov_base: u64,
    pub iov_len: u64,
}

/// Fixed part of `v4v_pfn_list`; `npage` u64 frame numbers follow.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct PfnListHeader {
    pub magic: u64,
    pub npage: u32,
    pub pad: u32,
    pub reserved: [u64; 3],
}

/// Fixed part of `v4v_ring`; `len` bytes of ring data follow at byte 60.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct RingHeader {
    pub magic: u64,
    pub id: RingId,
    pub len: u32,
    /// Written by the receiving guest: where it will read next.
    pub rx_ptr: u32,
    /// Written by Xen: where the next message goes.
    pub tx_ptr: u32,
    pub reserved: [u64; 4],
}

/// Header Xen writes in front of every message in a ring.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct MessageHeader {
    /// Payload length + 16 (this header).
    pub len: u32,
    pub source: Addr,
    pub pad: u16,
    pub protocol: u32,
}

/// One entry of a notify request (`v4v_ring_data_ent`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct RingDataEnt {
    pub ring: Addr,
    pub flags: u16,
    pub space_required: u32,
    pub max_message_size: u32,
}

/// Fixed part of `v4v_ring_data`; `nent` entries follow at byte 48.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct RingDataHeader {
    pub magic: u64,
    pub nent: u32,
    pub pad: u32,
    pub reserved: [u64; 4],
}

/// One viptables rule.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct ViptablesRule {
    pub src: Addr,
    pub dst: Addr,
    /// 1 accept, 0 reject.
    pub accept: u32,
}

/// `v4v_viptables_list`: a window of up to 8 rules.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, packed)]
pub struct ViptablesList {
    pub rules: [ViptablesRule; VIPTABLES_LIST_SIZE],
    /// In: first index to copy. Out: number of rules copied.
    pub nb_rules: u32,
}

/// Byte offset of `ring[]` in a `v4v_ring` (the first page).
pub const RING_DATA_OFFSET: usize = 60;
/// Byte offset of `rx_ptr` in a `v4v_ring`.
pub const RING_RX_PTR_OFFSET: usize = 20;
/// Byte offset of `tx_ptr` in a `v4v_ring`.
pub const RING_TX_PTR_OFFSET: usize = 24;
/// Byte offset of `data[]` in a `v4v_ring_data`.
pub const RING_DATA_ENT_OFFSET: usize = 48;
/// Byte offset of `pages[]` in a `v4v_pfn_list`.
pub const PFN_LIST_PAGES_OFFSET: usize = 40;
/// Byte offset of `nb_rules` in a `v4v_viptables_list`.
pub const VIPTABLES_NB_RULES_OFFSET: usize = 128;
/// Size of a message header in the ring.
pub const MESSAGE_HEADER_SIZE: usize = 16;

macro_rules! assert_layout {
    ($t:ty, $size:expr, $( $field:ident @ $off:expr ),* ) => {
        const_assert_eq!(core::mem::size_of::<$t>(), $size);
        $( const_assert_eq!(core::mem::offset_of!($t, $field), $off); )*
    };
}

assert_layout!(Addr, 6, port @ 0, domain @ 4);
assert_layout!(RingId, 8, addr @ 0, partner @ 6);
assert_layout!(Iov, 16, iov_base @ 0, iov_len @ 8);
assert_layout!(PfnListHeader, 40, magic @ 0, npage @ 8, pad @ 12, reserved @ 16);
assert_layout!(RingHeader, 60, magic @ 0, id @ 8, len @ 16, rx_ptr @ 20, tx_ptr @ 24, reserved @ 28);
assert_layout!(MessageHeader, 16, len @ 0, source @ 4, pad @ 10, protocol @ 12);
assert_layout!(RingDataEnt, 16, ring @ 0, flags @ 6, space_required @ 8, max_message_size @ 12);
assert_layout!(RingDataHeader, 48, magic @ 0, nent @ 8, pad @ 12, reserved @ 16);
assert_layout!(ViptablesRule, 16, src @ 0, dst @ 6, accept @ 12);
assert_layout!(ViptablesList, 132, rules @ 0, nb_rules @ 128);
const_assert_eq!(RING_DATA_OFFSET, core::mem::size_of::<RingHeader>());
const_assert_eq!(
    RING_RX_PTR_OFFSET,
    core::mem::offset_of!(RingHeader, rx_ptr)
);
const_assert_eq!(
    RING_TX_PTR_OFFSET,
    core::mem::offset_of!(RingHeader, tx_ptr)
);
const_assert_eq!(RING_DATA_ENT_OFFSET, core::mem::size_of::<RingDataHeader>());
const_assert_eq!(PFN_LIST_PAGES_OFFSET, core::mem::size_of::<PfnListHeader>());
const_assert_eq!(MESSAGE_HEADER_SIZE, core::mem::size_of::<MessageHeader>());
const_assert_eq!(MAX_MSG_SIZE, 16_777_184);
const_assert_eq!(
    MAX_RING_PAGES as usize,
    (RING_DATA_OFFSET + MAX_RING_SIZE as usize).div_ceil(PAGE_SIZE)
);

/// Every named constant of the ABI as (C name, value), in the order of the
/// ABI document. `make abi-check` compares this list, the struct layouts
/// below and the C header `v4v.h` so that the two cannot drift apart.
pub const C_CONSTANTS: &[(&str, u64)] = &[
    ("__HYPERVISOR_v4v_op", HYPERVISOR_V4V_OP as u64),
    ("VIRQ_V4V", VIRQ_V4V as u64),
    ("V4VOP_register_ring", op::REGISTER_RING as u64),
    ("V4VOP_unregister_ring", op::UNREGISTER_RING as u64),
    ("V4VOP_send", op::SEND as u64),
    ("V4VOP_notify", op::NOTIFY as u64),
    ("V4VOP_sendv", op::SENDV as u64),
    ("V4VOP_viptables_add", op::VIPTABLES_ADD as u64),
    ("V4VOP_viptables_del", op::VIPTABLES_DEL as u64),
    ("V4VOP_viptables_list", op::VIPTABLES_LIST as u64),
    ("V4V_RING_MAGIC", RING_MAGIC),
    ("V4V_PFN_LIST_MAGIC", PFN_LIST_MAGIC),
    ("V4V_RING_DATA_MAGIC", RING_DATA_MAGIC),
    ("V4V_PROTO_DGRAM", PROTO_DGRAM as u64),
    ("V4V_PROTO_STREAM", PROTO_STREAM as u64),
    ("V4V_DOMID_ANY", DOMID_ANY as u64),
    ("V4V_PORT_NONE", PORT_NONE as u64),
    ("V4V_DOMID_WILDCARD", DOMID_WILDCARD as u64),
    ("V4V_PORT_ANY", PORT_ANY as u64),
    ("V4V_MIN_RING_SIZE", MIN_RING_SIZE as u64),
    ("V4V_MAX_RING_SIZE", MAX_RING_SIZE as u64),
    ("V4V_MAX_RING_PAGES", MAX_RING_PAGES as u64),
    ("V4V_MAX_MSG_SIZE", MAX_MSG_SIZE as u64),
    ("V4V_MAXIOV", MAXIOV as u64),
    ("V4V_MAXENT", MAXENT as u64),
    ("V4V_VIPTABLES_LIST_SIZE", VIPTABLES_LIST_SIZE as u64),
    ("V4V_RING_DATA_F_EMPTY", RingDataFlags::EMPTY.bits() as u64),
    (
        "V4V_RING_DATA_F_EXISTS",
        RingDataFlags::EXISTS.bits() as u64,
    ),
    (
        "V4V_RING_DATA_F_PENDING",
        RingDataFlags::PENDING.bits() as u64,
    ),
    (
        "V4V_RING_DATA_F_SUFFICIENT",
        RingDataFlags::SUFFICIENT.bits() as u64,
    ),
    ("V4V_SHF_SYN", StreamFlags::SYN.bits() as u64),
    ("V4V_SHF_ACK", StreamFlags::ACK.bits() as u64),
    ("V4V_SHF_RST", StreamFlags::RST.bits() as u64),
    ("V4V_SHF_PING", StreamFlags::PING.bits() as u64),
    ("V4V_SHF_PONG", StreamFlags::PONG.bits() as u64),
];

/// One structure's layout: C struct name, size, and (field, offset) pairs.
pub type CLayout = (&'static str, usize, &'static [(&'static str, usize)]);

/// Every structure of the ABI as (C struct name, size, [(field, offset)]).
pub const C_LAYOUTS: &[CLayout] = &[
    ("v4v_addr", 6, &[("port", 0), ("domain", 4)]),
    ("v4v_ring_id", 8, &[("addr", 0), ("partner", 6)]),
    ("v4v_iov", 16, &[("iov_base", 0), ("iov_len", 8)]),
    (
        "v4v_pfn_list",
        40,
        &[
            ("magic", 0),
            ("npage", 8),
            ("pad", 12),
            ("reserved", 16),
            ("pages", 40),
        ],
    ),
    (
        "v4v_ring",
        60,
        &[
            ("magic", 0),
            ("id", 8),
            ("len", 16),
            ("rx_ptr", 20),
            ("tx_ptr", 24),
            ("reserved", 28),
            ("ring", 60),
        ],
    ),
    (
        "v4v_ring_message_header",
        16,
        &[("len", 0), ("source", 4), ("pad", 10), ("protocol", 12)],
    ),
    (
        "v4v_ring_data_ent",
        16,
        &[
            ("ring", 0),
            ("flags", 6),
            ("space_required", 8),
            ("max_message_size", 12),
        ],
    ),
    (
        "v4v_ring_data",
        48,
        &[
            ("magic", 0),
            ("nent", 8),
            ("pad", 12),
            ("reserved", 16),
            ("data", 48),
        ],
    ),
    (
        "v4v_viptables_rule",
        16,
        &[("src", 0), ("dst", 6), ("accept", 12)],
    ),
    (
        "v4v_viptables_list",
        132,
        &[("rules", 0), ("nb_rules", 128)],
    ),
];
