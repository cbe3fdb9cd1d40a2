/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The V4V guest ABI as the vsock transport uses it (../../shared/V4V-ABI.md
 * is the contract; the numbers below are its numbers), and the wire header
 * of the stream protocol carried in V4V messages (README.md).
 */
#ifndef VSOCK_V4V_H
#define VSOCK_V4V_H

#include <linux/types.h>
#include <linux/build_bug.h>

#define V4V_HYPERCALL		43
#define VIRQ_V4V		14

#define V4V_OP_REGISTER_RING	1
#define V4V_OP_UNREGISTER_RING	2
#define V4V_OP_SEND		3
#define V4V_OP_NOTIFY		4
#define V4V_OP_SENDV		5

#define V4V_RING_MAGIC		0xdf6977f231abd910ULL
#define V4V_PFN_LIST_MAGIC	0x91dd6159045b302dULL
#define V4V_RING_DATA_MAGIC	0x4ce4d30fbc82e92aULL
#define V4V_PROTO_DGRAM		0x3c2c1db8U
#define V4V_PROTO_STREAM	0x70f6a8e5U
#define V4V_DOMID_ANY		0x7fffU
#define V4V_ROUNDUP(a)		(((a) + 15) & ~15U)

#define V4V_RING_DATA_F_EMPTY		1
#define V4V_RING_DATA_F_EXISTS		2
#define V4V_RING_DATA_F_PENDING		4
#define V4V_RING_DATA_F_SUFFICIENT	8

struct v4v_addr {
	u32 port;
	u16 domain;
} __packed;

struct v4v_ring_id {
	struct v4v_addr addr;
	u16 partner;
} __packed;

struct v4v_iov {
	u64 iov_base;
	u64 iov_len;
} __packed;

struct v4v_pfn_list {
	u64 magic;
	u32 npage;
	u32 pad;
	u64 reserved[3];
	u64 pages[];
} __packed;

struct v4v_ring {
	u64 magic;
	struct v4v_ring_id id;
	u32 len;
	u32 rx_ptr;
	u32 tx_ptr;
	u64 reserved[4];
	u8 ring[];
} __packed;

struct v4v_ring_message_header {
	u32 len;
	struct v4v_addr source;
	u16 pad;
	u32 protocol;
} __packed;

struct v4v_ring_data_ent {
	struct v4v_addr ring;
	u16 flags;
	u32 space_required;
	u32 max_message_size;
} __packed;

struct v4v_ring_data {
	u64 magic;
	u32 nent;
	u32 pad;
	u64 reserved[4];
	struct v4v_ring_data_ent data[];
} __packed;

static inline void v4v_abi_layout_check(void)
{
	BUILD_BUG_ON(sizeof(struct v4v_addr) != 6);
	BUILD_BUG_ON(sizeof(struct v4v_ring_id) != 8);
	BUILD_BUG_ON(sizeof(struct v4v_iov) != 16);
	BUILD_BUG_ON(sizeof(struct v4v_pfn_list) != 40);
	BUILD_BUG_ON(sizeof(struct v4v_ring) != 60);
	BUILD_BUG_ON(sizeof(struct v4v_ring_message_header) != 16);
	BUILD_BUG_ON(sizeof(struct v4v_ring_data_ent) != 16);
	BUILD_BUG_ON(sizeof(struct v4v_ring_data) != 48);
}

/*
 * The stream protocol (README.md, "Wire format"): every V4V message of
 * protocol V4V_PROTO_STREAM between two stream rings starts with this
 * 24-byte header, little-endian; `len` payload bytes follow.
 */
#define VV_SYN		0x0001	/* connection request (SYN) / accept (SYN|ACK) */
#define VV_ACK		0x0002
#define VV_RST		0x0004	/* abort, or "no such connection" */
#define VV_SHUT_RD	0x0010	/* sender will receive no more */
#define VV_SHUT_WR	0x0020	/* sender will send no more */
#define VV_CREDIT_REQ	0x0040	/* please send your buf_alloc/fwd_cnt */
#define VV_DATA		0x0080	/* `len` bytes of stream data follow */

struct vv_hdr {
	__le32 flags;
	__le32 src_port;	/* vsock port of the sender */
	__le32 dst_port;	/* vsock port of the receiver */
	__le32 buf_alloc;	/* sender's receive buffer for this connection */
	__le32 fwd_cnt;		/* bytes the sender's reader consumed, mod 2^32 */
	__le32 len;		/* payload bytes after the header */
} __packed;

static inline void vv_layout_check(void)
{
	BUILD_BUG_ON(sizeof(struct vv_hdr) != 24);
}

#endif
