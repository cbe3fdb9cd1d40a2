// SPDX-License-Identifier: GPL-2.0-only
/*
 * AF_VSOCK over V4V: a vsock transport whose stream connections travel as
 * V4V messages between Xen domains. See README.md for the addressing
 * (CID = domid + 3), the wire header and the close and failure semantics.
 *
 * Shape:
 *  - one V4V receive ring per domain (port VV_STREAM_PORT, any sender) made
 *    of vmalloc'ed guest pages, registered at load, unregistered at unload;
 *  - VIRQ_V4V bound on vCPU 0; its handler only queues the rx work on an
 *    ordered workqueue, which drains the ring in process context and hands
 *    each message to its socket under lock_sock();
 *  - credit-based flow control: a sender never has more unconsumed bytes
 *    in flight than the receiver advertised (buf_alloc - (tx_cnt -
 *    fwd_cnt)), so the per-connection receive queue is bounded;
 *  - a ring that is full at the peer (-EAGAIN) parks the writer; Xen raises
 *    VIRQ_V4V when the peer frees space, and the rx work wakes the writers;
 *  - a periodic probe (notify with the peers' stream rings) finds peers whose
 *    ring vanished (domain destroyed, module unloaded, viptables REJECT)
 *    and resets their connections with ECONNRESET.
 */
#define pr_fmt(fmt) "vsock-v4v: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/interrupt.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/uio.h>
#include <linux/skbuff.h>
#include <linux/mutex.h>
#include <net/sock.h>
#include <net/af_vsock.h>
#include <xen/xen.h>
#include <xen/events.h>
#include <xen/features.h>
#include <xen/page.h>
#include <asm/xen/hypercall.h>

#include "v4v.h"

/* The V4V port of every domain's stream ring ("vsoc"). */
#define VV_STREAM_PORT		0x76736f63U
/* CID = domid + VV_CID_BASE: CIDs 0-2 are reserved by vsock. */
#define VV_CID_BASE		3
#define VV_DOMID_LIMIT		0x7ff0	/* DOMID_FIRST_RESERVED */
/* Ring: 256 pages; ring[] is what is left after the 60-byte header. */
#define VV_RING_PAGES		256
#define VV_RING_LEN		(VV_RING_PAGES * PAGE_SIZE - 64)
/*
 * Largest stream payload in one message. 64 KiB, the write size of socat
 * and most bulk copies: one message per write halves the per-message
 * work (hypercall, VIRQ, rx work) of a 64 KiB write against 32 KiB
 * messages (make bench-vsock: 64 KiB throughput against 16 KiB in the
 * same boot went from 1.4-1.6x to 2.0-2.1x).
 */
#define VV_MAX_DATA		(64 * 1024)
/* Largest datagram. */
#define VV_MAX_DGRAM		(32 * 1024)
/* Smallest stream receive buffer (SO_VM_SOCKETS_BUFFER_SIZE is raised to it). */
#define VV_MIN_BUF		(32 * 1024)
#define VV_MAX_BUF		(4U * 1024 * 1024)
#define VV_PROBE_MS		250
/* Peer rings in one probing notify (the probe makes as many as it needs). */
#define VV_MAX_PROBE		64
/* A datagram socket's ring: 16 pages. */
#define VV_DGRAM_PAGES		16

static bool debug;
module_param(debug, bool, 0644);
MODULE_PARM_DESC(debug, "log every control message to the kernel log");

#define vv_dbg(fmt, ...) do {						\
	if (debug)							\
		pr_info_ratelimited(fmt, ##__VA_ARGS__);		\
} while (0)

static unsigned int probe_ms = VV_PROBE_MS;
module_param(probe_ms, uint, 0444);
MODULE_PARM_DESC(probe_ms, "peer liveness probe period in ms");

/* One received chunk of stream data. */
struct vv_chunk {
	struct list_head node;
	u32 len;
	u32 off;
	u8 data[];
};

/* Transport state of one vsock socket (vsk->trans). */
struct vv_sock {
	struct vsock_sock *vsk;
	struct list_head node;		/* vv_socks, under vv_socks_lock */
	u16 peer_dom;
	/* rx, under lock_sock */
	struct list_head rx_q;
	u32 rx_bytes;
	u32 buf_alloc;
	u32 fwd_cnt;
	u32 fwd_sent;
	/* tx, under lock_sock */
	u32 tx_cnt;
	u32 peer_buf_alloc;
	u32 peer_fwd_cnt;
	bool tx_blocked;		/* peer ring full; also read by rx work */
	bool reset;			/* connection gone, sk_err says why */
	/* datagram sockets, under vv_dgram_lock */
	struct v4v_ring *dring;
	u32 dport;
	struct list_head dnode;
	void *tx_buf;
};

/* A control message that found the peer's ring full, sent later. */
struct vv_ctl {
	struct list_head node;
	u16 dom;
	struct vv_hdr hdr;
};

static struct v4v_ring *vv_ring;
static u16 vv_domid;
static int vv_irq = -1;
static struct workqueue_struct *vv_wq;
static struct work_struct vv_rx_work;
static struct delayed_work vv_probe_work;
static atomic_t vv_virq_gen = ATOMIC_INIT(0);
static atomic_t vv_blocked = ATOMIC_INIT(0);
static LIST_HEAD(vv_socks);
static DEFINE_SPINLOCK(vv_socks_lock);
static LIST_HEAD(vv_ctl_q);
static DEFINE_SPINLOCK(vv_ctl_lock);
static unsigned int vv_ctl_n;			/* entries of vv_ctl_q */
/* Domains found full by the flush in progress (under vv_ctl_lock). */
static DECLARE_BITMAP(vv_ctl_full, VV_DOMID_LIMIT);
static bool vv_stopping;
/* Peers found dead by the last probe, for vv_reset_dead (one bit a domid). */
static DECLARE_BITMAP(vv_dead, VV_DOMID_LIMIT);
/* Peers the probe in progress asks about (the probe work's own). */
static DECLARE_BITMAP(vv_watch, VV_DOMID_LIMIT);

static struct vsock_transport vv_transport;
static LIST_HEAD(vv_dgrams);
static DEFINE_MUTEX(vv_dgram_lock);
static u32 vv_dgram_next = 49152;

static struct v4v_ring *vv_ring_create(u32 port, unsigned int npages, long *rcp);
static void vv_ring_destroy(struct v4v_ring *r);
static void vv_dgram_unbind(struct vv_sock *vv);

/*
 * The probe (vv_probe) runs only while it has something to watch: a
 * connection, a blocked sender or a queued control message. Whatever
 * creates one of those starts it; an idle domain takes no timer wakeups.
 */
static void vv_probe_start(void)
{
	if (!READ_ONCE(vv_stopping))
		queue_delayed_work(vv_wq, &vv_probe_work,
				   msecs_to_jiffies(probe_ms ? probe_ms : VV_PROBE_MS));
}

/* ---- the hypercall ------------------------------------------------------ */

/*
 * V4V takes six arguments: rdi = cmd, rsi, rdx, r10, r8 and r9 (the shim
 * reads r9 from the saved registers). Linux's helpers stop at five, so the
 * call goes through the kernel's hypercall static call with r9 set here.
 * stac/clac as privcmd does: harmless for kernel buffers, needed if user
 * memory were ever passed.
 */
static long v4v_call(unsigned long cmd, unsigned long a1, unsigned long a2,
		     unsigned long a3, unsigned long a4, unsigned long a5)
{
	register unsigned long rax asm("rax") = V4V_HYPERCALL;
	register unsigned long rdi asm("rdi") = cmd;
	register unsigned long rsi asm("rsi") = a1;
	register unsigned long rdx asm("rdx") = a2;
	register unsigned long r10 asm("r10") = a3;
	register unsigned long r8 asm("r8") = a4;
	register unsigned long r9 asm("r9") = a5;

	__xen_stac();
	asm volatile(__HYPERCALL
		     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10),
		       "+r"(r8), "+r"(r9), ASM_CALL_CONSTRAINT
		     :
		     : "memory");
	__xen_clac();
	return (long)rax;
}

/* ---- addressing --------------------------------------------------------- */

static inline u32 vv_dom_to_cid(u16 dom)
{
	return (u32)dom + VV_CID_BASE;
}

static inline bool vv_cid_ok(u32 cid)
{
	return cid >= VV_CID_BASE && cid - VV_CID_BASE < VV_DOMID_LIMIT;
}

static inline u16 vv_cid_to_dom(u32 cid)
{
	return (u16)(cid - VV_CID_BASE);
}

static u32 vv_get_local_cid(void)
{
	return vv_dom_to_cid(vv_domid);
}

/* ---- sending ------------------------------------------------------------ */

/* One stream message to dom's stream ring: header plus optional payload. */
static long vv_send(u16 dom, const struct vv_hdr *hdr, const void *buf,
		    size_t len)
{
	struct v4v_addr src = { .port = VV_STREAM_PORT, .domain = V4V_DOMID_ANY };
	struct v4v_addr dst = { .port = VV_STREAM_PORT, .domain = dom };
	struct v4v_iov iov[2];

	iov[0].iov_base = (u64)(unsigned long)hdr;
	iov[0].iov_len = sizeof(*hdr);
	iov[1].iov_base = (u64)(unsigned long)buf;
	iov[1].iov_len = len;
	return v4v_call(V4V_OP_SENDV, (unsigned long)&src, (unsigned long)&dst,
			(unsigned long)iov, len ? 2 : 1, V4V_PROTO_STREAM);
}

static void vv_fill_hdr(struct vv_hdr *h, u32 flags, u32 src_port,
			u32 dst_port, u32 buf_alloc, u32 fwd_cnt, u32 len)
{
	h->flags = cpu_to_le32(flags);
	h->src_port = cpu_to_le32(src_port);
	h->dst_port = cpu_to_le32(dst_port);
	h->buf_alloc = cpu_to_le32(buf_alloc);
	h->fwd_cnt = cpu_to_le32(fwd_cnt);
	h->len = cpu_to_le32(len);
}

/* Pending control messages at most (a peer that never drains its ring). */
#define VV_MAX_CTL_Q		1024

/* Under vv_ctl_lock. */
static bool vv_ctl_pending(u16 dom)
{
	struct vv_ctl *c;

	list_for_each_entry(c, &vv_ctl_q, node)
		if (c->dom == dom)
			return true;
	return false;
}

/*
 * A control message (no payload). Order holds per peer domain: while
 * anything waits for dom, so does this. A full ring at the peer queues a
 * `reliable` message for the rx work and the probe to retry (a credit
 * update replaces a queued one of its connection instead); an unreliable
 * one (an RST for a stray message) is dropped. A peer that never drains its
 * ring holds up only its own messages, and at most VV_MAX_CTL_Q in all:
 * beyond that, -ENOBUFS. The hypercall never sleeps, so it is made under
 * the lock, which keeps queue order and send order one.
 */
static long vv_send_ctl(u16 dom, const struct vv_hdr *hdr, bool reliable)
{
	u32 flags = le32_to_cpu(hdr->flags);
	bool started = false;
	struct vv_ctl *c;
	long rc = -EAGAIN;

	vv_dbg("tx dom%u flags %#x %u->%u\n", dom, flags,
	       le32_to_cpu(hdr->src_port), le32_to_cpu(hdr->dst_port));

	spin_lock_bh(&vv_ctl_lock);
	if (!vv_ctl_pending(dom))
		rc = vv_send(dom, hdr, NULL, 0);
	if (rc != -EAGAIN || !reliable)
		goto out;
	if (flags == VV_ACK) {
		list_for_each_entry(c, &vv_ctl_q, node) {
			if (c->dom == dom && c->hdr.flags == hdr->flags &&
			    c->hdr.src_port == hdr->src_port &&
			    c->hdr.dst_port == hdr->dst_port) {
				c->hdr = *hdr;
				rc = 0;
				goto out;
			}
		}
	}
	rc = -ENOBUFS;
	if (vv_ctl_n >= VV_MAX_CTL_Q)
		goto out;
	rc = -ENOMEM;
	c = kmalloc(sizeof(*c), GFP_ATOMIC | __GFP_NOWARN);
	if (!c)
		goto out;
	c->dom = dom;
	c->hdr = *hdr;
	list_add_tail(&c->node, &vv_ctl_q);
	vv_ctl_n++;
	started = true;
	rc = 0;
out:
	spin_unlock_bh(&vv_ctl_lock);
	if (rc < 0)
		vv_dbg("tx dom%u: %ld\n", dom, rc);
	if (started)
		vv_probe_start();
	return rc < 0 ? rc : 0;
}

/*
 * Resends what waits, in order per domain: a domain whose ring is still
 * full keeps the rest of its messages; the others go.
 */
static void vv_flush_ctl(void)
{
	struct vv_ctl *c, *n;

	spin_lock_bh(&vv_ctl_lock);
	list_for_each_entry_safe(c, n, &vv_ctl_q, node) {
		if (test_bit(c->dom, vv_ctl_full))
			continue;
		if (vv_send(c->dom, &c->hdr, NULL, 0) == -EAGAIN) {
			set_bit(c->dom, vv_ctl_full);
			continue;
		}
		list_del(&c->node);
		vv_ctl_n--;
		kfree(c);
	}
	list_for_each_entry(c, &vv_ctl_q, node)
		clear_bit(c->dom, vv_ctl_full);
	spin_unlock_bh(&vv_ctl_lock);
}

/* A control message from a socket's own addresses. */
static long vv_sock_ctl(struct vsock_sock *vsk, u32 flags)
{
	struct vv_sock *vv = vsk->trans;
	struct vv_hdr h;

	vv_fill_hdr(&h, flags, vsk->local_addr.svm_port,
		    vsk->remote_addr.svm_port, vv->buf_alloc, vv->fwd_cnt, 0);
	vv->fwd_sent = vv->fwd_cnt;
	return vv_send_ctl(vv->peer_dom, &h, true);
}

/* RST to the sender of a message no socket takes. */
static void vv_reply_rst(u16 dom, const struct vv_hdr *in)
{
	struct vv_hdr h;

	if (le32_to_cpu(in->flags) & VV_RST)
		return;
	vv_fill_hdr(&h, VV_RST, le32_to_cpu(in->dst_port),
		    le32_to_cpu(in->src_port), 0, 0, 0);
	vv_send_ctl(dom, &h, false);
}

/* ---- socket state ------------------------------------------------------- */

static void vv_purge_rx(struct vv_sock *vv)
{
	struct vv_chunk *c, *n;

	list_for_each_entry_safe(c, n, &vv->rx_q, node) {
		list_del(&c->node);
		kvfree(c);
	}
	vv->rx_bytes = 0;
}

/*
 * The connection is gone (RST, dead peer, failed send): every later read and
 * write fails with err. The vsock core reports sk_err only for a socket in
 * TCP_ESTABLISHED (otherwise a read says 0 or ENOTCONN), so the state stays
 * and vv->reset makes it inert: no space, nothing sent, no probing.
 */
static void vv_set_reset(struct sock *sk, int err)
{
	struct vv_sock *vv = vsock_sk(sk)->trans;

	if (vv)
		WRITE_ONCE(vv->reset, true);
	sk->sk_err = err;
	sk_error_report(sk);
	sk->sk_state_change(sk);
	sk->sk_write_space(sk);
}

/*
 * Stream state (SYN, credit, shutdown, RST) belongs to SOCK_STREAM sockets
 * only. A datagram socket's sk_state says nothing about that: the 6.1 core
 * leaves it TCP_CLOSE, but 6.12's vsock_dgram_connect() sets
 * TCP_ESTABLISHED on a connect()ed datagram socket (added with sockmap
 * support for vsock, after 6.1). So every test of sk_state that means "a
 * stream connection" checks the type first; the same on both kernels, and
 * no LINUX_VERSION_CODE needed.
 */
static bool vv_is_stream(const struct sock *sk)
{
	return sk->sk_type == SOCK_STREAM;
}

static u32 vv_credit(struct vv_sock *vv)
{
	u32 inflight = vv->tx_cnt - vv->peer_fwd_cnt;

	if (inflight >= vv->peer_buf_alloc)
		return 0;
	return vv->peer_buf_alloc - inflight;
}

static int vv_init(struct vsock_sock *vsk, struct vsock_sock *psk)
{
	struct vv_sock *vv;

	vv = kzalloc(sizeof(*vv), GFP_KERNEL);
	if (!vv)
		return -ENOMEM;
	vv->vsk = vsk;
	INIT_LIST_HEAD(&vv->rx_q);
	INIT_LIST_HEAD(&vv->dnode);
	if (psk && psk->trans)
		vv->buf_alloc = ((struct vv_sock *)psk->trans)->buf_alloc;
	else
		vv->buf_alloc = min_t(u64, vsk->buffer_size, VV_MAX_BUF);
	if (!vv->buf_alloc)
		vv->buf_alloc = VV_MIN_BUF;
	vsk->trans = vv;
	spin_lock_bh(&vv_socks_lock);
	list_add(&vv->node, &vv_socks);
	spin_unlock_bh(&vv_socks_lock);
	return 0;
}

static void vv_destruct(struct vsock_sock *vsk)
{
	struct vv_sock *vv = vsk->trans;

	if (!vv)
		return;
	vv_dgram_unbind(vv);
	spin_lock_bh(&vv_socks_lock);
	list_del(&vv->node);
	if (vv->tx_blocked)
		atomic_dec(&vv_blocked);
	spin_unlock_bh(&vv_socks_lock);
	vv_purge_rx(vv);
	kvfree(vv->tx_buf);
	kfree(vv);
	vsk->trans = NULL;
}

static void vv_release(struct vsock_sock *vsk)
{
	struct sock *sk = sk_vsock(vsk);
	struct vv_sock *vv = vsk->trans;

	if (vv) {
		if (READ_ONCE(vv->reset) || !vv_is_stream(sk)) {
			/* nothing to tell the peer */
		} else if (sk->sk_state == TCP_ESTABLISHED) {
			/* Unread data makes the close abortive, as in TCP. */
			if (vv->rx_bytes)
				vv_sock_ctl(vsk, VV_RST);
			else if ((vsk->peer_shutdown & SHUTDOWN_MASK) != SHUTDOWN_MASK)
				vv_sock_ctl(vsk, VV_SHUT_RD | VV_SHUT_WR);
		} else if (sk->sk_state == TCP_SYN_SENT) {
			vv_sock_ctl(vsk, VV_RST);
		}
		vv_purge_rx(vv);
		vv_dgram_unbind(vv);
	}
	sk->sk_state = TCP_CLOSE;
	sock_set_flag(sk, SOCK_DONE);
	vsock_remove_sock(vsk);
}

static int vv_cancel_pkt(struct vsock_sock *vsk)
{
	return 0;
}

static bool vv_stream_allow(u32 cid, u32 port)
{
	return vv_cid_ok(cid);
}

static bool vv_dgram_allow(u32 cid, u32 port)
{
	return vv_cid_ok(cid);
}

/*
 * Datagrams: a bound datagram socket owns a V4V ring at V4V port = its
 * vsock port (any sender), and a datagram is one V4V message of protocol
 * V4V_PROTO_DGRAM with the bare payload, so any V4V guest can talk to it.
 */
static int vv_dgram_port_used(u32 port)
{
	struct vv_sock *d;

	list_for_each_entry(d, &vv_dgrams, dnode)
		if (d->dport == port)
			return 1;
	return port == VV_STREAM_PORT;
}

static int vv_dgram_bind(struct vsock_sock *vsk, struct sockaddr_vm *addr)
{
	struct vv_sock *vv = vsk->trans;
	struct v4v_ring *r;
	u32 port = addr->svm_port;
	unsigned int tries;
	long rc;

	if (!vv)
		return -ENODEV;
	if (vv->dring)
		return -EINVAL;
	if (addr->svm_cid != VMADDR_CID_ANY && addr->svm_cid != vv_get_local_cid())
		return -EADDRNOTAVAIL;
	mutex_lock(&vv_dgram_lock);
	if (port == VMADDR_PORT_ANY) {
		for (tries = 0; tries < 16384; tries++) {
			port = vv_dgram_next++;
			if (vv_dgram_next >= 65536)
				vv_dgram_next = 49152;
			if (!vv_dgram_port_used(port))
				break;
		}
		if (tries == 16384) {
			mutex_unlock(&vv_dgram_lock);
			return -EADDRINUSE;
		}
	} else if (vv_dgram_port_used(port)) {
		mutex_unlock(&vv_dgram_lock);
		return -EADDRINUSE;
	}
	r = vv_ring_create(port, VV_DGRAM_PAGES, &rc);
	if (!r) {
		mutex_unlock(&vv_dgram_lock);
		return rc == -ENOMEM ? -ENOMEM : -EADDRNOTAVAIL;
	}
	vv->dring = r;
	vv->dport = port;
	list_add(&vv->dnode, &vv_dgrams);
	mutex_unlock(&vv_dgram_lock);
	vsock_addr_init(&vsk->local_addr, vv_get_local_cid(), port);
	return 0;
}

static void vv_dgram_unbind(struct vv_sock *vv)
{
	mutex_lock(&vv_dgram_lock);
	if (vv->dring) {
		list_del(&vv->dnode);
		vv_ring_destroy(vv->dring);
		vv->dring = NULL;
	}
	mutex_unlock(&vv_dgram_lock);
}

static int vv_dgram_enqueue(struct vsock_sock *vsk, struct sockaddr_vm *addr,
			    struct msghdr *msg, size_t len)
{
	struct v4v_addr src, dst;
	void *buf;
	long rc;

	if (len > VV_MAX_DGRAM)
		return -EMSGSIZE;
	if (!vv_cid_ok(addr->svm_cid))
		return -EINVAL;
	buf = kvmalloc(len ? len : 1, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (memcpy_from_msg(buf, msg, len)) {
		kvfree(buf);
		return -EFAULT;
	}
	src.port = vsk->local_addr.svm_port;
	src.domain = V4V_DOMID_ANY;
	dst.port = addr->svm_port;
	dst.domain = vv_cid_to_dom(addr->svm_cid);
	rc = v4v_call(V4V_OP_SEND, (unsigned long)&src, (unsigned long)&dst,
		      (unsigned long)buf, len, V4V_PROTO_DGRAM);
	kvfree(buf);
	if (rc >= 0)
		return len;
	switch (rc) {
	case -EAGAIN:
		return -EAGAIN;
	case -ENOBUFS:
		return -EMSGSIZE;
	case -ENOTCONN:
		return -ECONNREFUSED;	/* no such domain or no ring at that port */
	case -EPERM:
		return -EACCES;		/* viptables REJECT */
	default:
		return (int)rc;
	}
}

/* The source address of a queued datagram. */
struct vv_dgram_cb {
	u32 cid;
	u32 port;
};

static int vv_dgram_dequeue(struct vsock_sock *vsk, struct msghdr *msg,
			    size_t len, int flags)
{
	struct sock *sk = sk_vsock(vsk);
	struct vv_dgram_cb *cb;
	struct sk_buff *skb;
	size_t n;
	int err;

	if (flags & ~(MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC))
		return -EOPNOTSUPP;
	skb = skb_recv_datagram(sk, flags, &err);
	if (!skb)
		return err;
	n = min_t(size_t, len, skb->len);
	err = skb_copy_datagram_msg(skb, 0, msg, n);
	if (!err) {
		if (n < skb->len)
			msg->msg_flags |= MSG_TRUNC;
		if (msg->msg_name) {
			DECLARE_SOCKADDR(struct sockaddr_vm *, vm_addr, msg->msg_name);

			cb = (struct vv_dgram_cb *)skb->cb;
			vsock_addr_init(vm_addr, cb->cid, cb->port);
			msg->msg_namelen = sizeof(*vm_addr);
		}
		err = (flags & MSG_TRUNC) ? skb->len : n;
	}
	skb_free_datagram(sk, skb);
	return err;
}

static int vv_errno(long rc)
{
	switch (rc) {
	case -ENOTCONN:
		return EHOSTUNREACH;	/* no such domain, or no stream ring */
	case -EPERM:
		return EACCES;		/* viptables REJECT */
	case -ENOMEM:
		return ENOMEM;
	default:
		return ECONNRESET;
	}
}

static int vv_connect(struct vsock_sock *vsk)
{
	struct vv_sock *vv = vsk->trans;
	struct sock *sk = sk_vsock(vsk);
	long rc;

	if (!vv || !vv_cid_ok(vsk->remote_addr.svm_cid))
		return -ENETUNREACH;
	vv->peer_dom = vv_cid_to_dom(vsk->remote_addr.svm_cid);
	vv->tx_cnt = 0;
	vv->peer_fwd_cnt = 0;
	vv->peer_buf_alloc = 0;
	rc = vv_sock_ctl(vsk, VV_SYN);
	if (rc < 0) {
		sk->sk_state = TCP_CLOSE;
		return -vv_errno(rc);
	}
	return 0;
}

static int vv_shutdown(struct vsock_sock *vsk, int mode)
{
	u32 flags = 0;

	struct vv_sock *vv = vsk->trans;

	if (sk_vsock(vsk)->sk_state != TCP_ESTABLISHED || !vv || vv->reset)
		return 0;
	if (mode & RCV_SHUTDOWN)
		flags |= VV_SHUT_RD;
	if (mode & SEND_SHUTDOWN)
		flags |= VV_SHUT_WR;
	if (!flags)
		return 0;
	vv_sock_ctl(vsk, flags);
	return 0;
}

static s64 vv_stream_has_data(struct vsock_sock *vsk)
{
	struct vv_sock *vv = vsk->trans;

	return vv ? vv->rx_bytes : 0;
}

static s64 vv_stream_has_space(struct vsock_sock *vsk)
{
	struct vv_sock *vv = vsk->trans;

	if (!vv || READ_ONCE(vv->tx_blocked) || READ_ONCE(vv->reset))
		return 0;
	return vv_credit(vv);
}

static u64 vv_stream_rcvhiwat(struct vsock_sock *vsk)
{
	struct vv_sock *vv = vsk->trans;

	return vv ? vv->buf_alloc : 0;
}

static bool vv_stream_is_active(struct vsock_sock *vsk)
{
	return true;
}

static void vv_notify_buffer_size(struct vsock_sock *vsk, u64 *val)
{
	struct vv_sock *vv = vsk->trans;

	if (*val > VV_MAX_BUF)
		*val = VV_MAX_BUF;
	if (*val < VV_MIN_BUF)
		*val = VV_MIN_BUF;
	if (vv)
		vv->buf_alloc = *val;
}

static void vv_mark_blocked(struct vv_sock *vv, bool on)
{
	spin_lock_bh(&vv_socks_lock);
	if (vv->tx_blocked != on) {
		WRITE_ONCE(vv->tx_blocked, on);
		if (on)
			atomic_inc(&vv_blocked);
		else
			atomic_dec(&vv_blocked);
	}
	spin_unlock_bh(&vv_socks_lock);
}

static ssize_t vv_stream_enqueue(struct vsock_sock *vsk, struct msghdr *msg,
				 size_t len)
{
	struct vv_sock *vv = vsk->trans;
	struct sock *sk = sk_vsock(vsk);
	struct vv_hdr h;
	size_t n;
	int gen;
	long rc;

	if (!vv)
		return -ENOTCONN;
	if (vv->reset)
		return 0;
	n = min_t(size_t, len, vv_credit(vv));
	n = min_t(size_t, n, VV_MAX_DATA);
	if (!n)
		return 0;
	if (!vv->tx_buf) {
		vv->tx_buf = kvmalloc(VV_MAX_DATA, GFP_KERNEL);
		if (!vv->tx_buf)
			return -ENOMEM;
	}
	if (copy_from_iter(vv->tx_buf, n, &msg->msg_iter) != n)
		return -EFAULT;
	vv_fill_hdr(&h, VV_DATA, vsk->local_addr.svm_port,
		    vsk->remote_addr.svm_port, vv->buf_alloc, vv->fwd_cnt, n);
	gen = atomic_read(&vv_virq_gen);
	rc = vv_send(vv->peer_dom, &h, vv->tx_buf, n);
	if (rc >= 0) {
		vv->tx_cnt += n;
		vv->fwd_sent = vv->fwd_cnt;
		return n;
	}
	iov_iter_revert(&msg->msg_iter, n);
	if (rc == -EAGAIN) {
		/*
		 * Xen queued us on the peer's ring and raises VIRQ_V4V when it
		 * has room; the rx work then clears tx_blocked and wakes us. A
		 * VIRQ that came in between is not lost: the generation moved.
		 */
		vv_mark_blocked(vv, true);
		if (atomic_read(&vv_virq_gen) != gen)
			vv_mark_blocked(vv, false);
		else
			vv_probe_start();
		return 0;
	}
	/* The peer's ring is gone (domain dead, module unloaded, a rule). */
	vv_set_reset(sk, ECONNRESET);
	return 0;
}

static ssize_t vv_stream_dequeue(struct vsock_sock *vsk, struct msghdr *msg,
				 size_t len, int flags)
{
	struct vv_sock *vv = vsk->trans;
	struct vv_chunk *c, *n;
	size_t copied = 0;

	if (!vv)
		return -ENOTCONN;
	list_for_each_entry_safe(c, n, &vv->rx_q, node) {
		size_t k = min_t(size_t, len - copied, c->len - c->off);

		if (!k)
			break;
		if (copy_to_iter(c->data + c->off, k, &msg->msg_iter) != k)
			return copied ? copied : -EFAULT;
		copied += k;
		if (flags & MSG_PEEK)
			continue;
		c->off += k;
		vv->rx_bytes -= k;
		vv->fwd_cnt += k;
		if (c->off == c->len) {
			list_del(&c->node);
			kvfree(c);
		}
	}
	/* Credit back to the peer once a quarter of the buffer is free. */
	if (!(flags & MSG_PEEK) && copied &&
	    vv->fwd_cnt - vv->fwd_sent >= vv->buf_alloc / 4 &&
	    sk_vsock(vsk)->sk_state == TCP_ESTABLISHED && !vv->reset)
		vv_sock_ctl(vsk, VV_ACK);
	return copied;
}

static int vv_notify_poll_in(struct vsock_sock *vsk, size_t target, bool *ready)
{
	*ready = vv_stream_has_data(vsk) >= (s64)max_t(size_t, target, 1);
	return 0;
}

static int vv_notify_poll_out(struct vsock_sock *vsk, size_t target, bool *ready)
{
	*ready = vv_stream_has_space(vsk) > 0;
	return 0;
}

static int vv_recv_notify(struct vsock_sock *vsk, size_t target,
			  struct vsock_transport_recv_notify_data *d)
{
	return 0;
}

static int vv_recv_post(struct vsock_sock *vsk, size_t target, ssize_t copied,
			bool data_read, struct vsock_transport_recv_notify_data *d)
{
	return 0;
}

static int vv_send_notify(struct vsock_sock *vsk,
			  struct vsock_transport_send_notify_data *d)
{
	return 0;
}

static int vv_send_post(struct vsock_sock *vsk, ssize_t written,
			struct vsock_transport_send_notify_data *d)
{
	return 0;
}

static struct vsock_transport vv_transport = {
	.module = THIS_MODULE,
	.init = vv_init,
	.destruct = vv_destruct,
	.release = vv_release,
	.cancel_pkt = vv_cancel_pkt,
	.connect = vv_connect,
	.dgram_bind = vv_dgram_bind,
	.dgram_dequeue = vv_dgram_dequeue,
	.dgram_enqueue = vv_dgram_enqueue,
	.dgram_allow = vv_dgram_allow,
	.stream_dequeue = vv_stream_dequeue,
	.stream_enqueue = vv_stream_enqueue,
	.stream_has_data = vv_stream_has_data,
	.stream_has_space = vv_stream_has_space,
	.stream_rcvhiwat = vv_stream_rcvhiwat,
	.stream_is_active = vv_stream_is_active,
	.stream_allow = vv_stream_allow,
	.notify_poll_in = vv_notify_poll_in,
	.notify_poll_out = vv_notify_poll_out,
	.notify_recv_init = vv_recv_notify,
	.notify_recv_pre_block = vv_recv_notify,
	.notify_recv_pre_dequeue = vv_recv_notify,
	.notify_recv_post_dequeue = vv_recv_post,
	.notify_send_init = vv_send_notify,
	.notify_send_pre_block = vv_send_notify,
	.notify_send_pre_enqueue = vv_send_notify,
	.notify_send_post_enqueue = vv_send_post,
	.notify_buffer_size = vv_notify_buffer_size,
	.shutdown = vv_shutdown,
	.get_local_cid = vv_get_local_cid,
};

/* ---- receiving ---------------------------------------------------------- */

/* Copy n bytes at offset off (wrapping at len) out of ring r. */
static void vv_rread(const struct v4v_ring *r, u32 len, u32 off, void *dst, u32 n)
{
	u32 first = min_t(u32, n, len - off);

	memcpy(dst, r->ring + off, first);
	if (n > first)
		memcpy((u8 *)dst + first, r->ring, n - first);
}

static void vv_ring_read(u32 off, void *dst, u32 n)
{
	vv_rread(vv_ring, VV_RING_LEN, off, dst, n);
}

static void vv_ring_skip(u32 *off, u32 n)
{
	*off += n;
	if (*off >= VV_RING_LEN)
		*off -= VV_RING_LEN;
}

/* Credit fields of a peer's message (newer fwd_cnt only). */
static void vv_take_credit(struct vv_sock *vv, const struct vv_hdr *h)
{
	u32 fwd = le32_to_cpu(h->fwd_cnt);
	u32 before = vv_credit(vv);

	vv->peer_buf_alloc = min_t(u32, le32_to_cpu(h->buf_alloc), VV_MAX_BUF);
	if ((s32)(fwd - vv->peer_fwd_cnt) > 0)
		vv->peer_fwd_cnt = fwd;
	if (!before && vv_credit(vv))
		sk_vsock(vv->vsk)->sk_write_space(sk_vsock(vv->vsk));
}

/* A SYN on a listening socket: a child, connected, in the accept queue. */
static void vv_accept(struct sock *listener, u16 dom, const struct vv_hdr *h)
{
	struct vsock_sock *vlistener = vsock_sk(listener);
	struct vsock_sock *vchild;
	struct vv_sock *vv;
	struct sock *child;

	if (sk_acceptq_is_full(listener) || vv_stopping)
		goto refuse;
	child = vsock_create_connected(listener);
	if (!child)
		goto refuse;
	sk_acceptq_added(listener);
	lock_sock_nested(child, SINGLE_DEPTH_NESTING);
	vchild = vsock_sk(child);
	vsock_addr_init(&vchild->local_addr, vv_get_local_cid(),
			le32_to_cpu(h->dst_port));
	vsock_addr_init(&vchild->remote_addr, vv_dom_to_cid(dom),
			le32_to_cpu(h->src_port));
	if (vsock_assign_transport(vchild, vlistener) ||
	    vchild->transport != &vv_transport || !vchild->trans) {
		release_sock(child);
		sk_acceptq_removed(listener);
		sock_put(child);
		goto refuse;
	}
	vv = vchild->trans;
	vv->peer_dom = dom;
	vv->peer_buf_alloc = min_t(u32, le32_to_cpu(h->buf_alloc), VV_MAX_BUF);
	vv->peer_fwd_cnt = le32_to_cpu(h->fwd_cnt);
	vv->tx_cnt = vv->peer_fwd_cnt;
	child->sk_state = TCP_ESTABLISHED;
	vsock_insert_connected(vchild);
	vv_probe_start();
	vsock_enqueue_accept(listener, child);
	if (vv_sock_ctl(vchild, VV_SYN | VV_ACK) < 0)
		vv_set_reset(child, ECONNRESET);
	release_sock(child);
	listener->sk_data_ready(listener);
	return;
refuse:
	vv_reply_rst(dom, h);
}

/*
 * The peer is done with this connection in both directions: it shut down
 * both ways, or one side reset it. Take the socket out of the connected
 * table now rather than at close. The peer may connect again from the
 * same port while our owner still holds this socket, and that request
 * must reach the listener: a lookup by (peer, port) would find this
 * socket first, and it drops a SYN. The owner still reads what is queued
 * and sees the end of file or the error; vv_release() removing it again
 * is harmless.
 */
static void vv_peer_done(struct vsock_sock *vsk)
{
	vsock_remove_connected(vsk);
}

/* One message for a socket, under its lock; data at ring offset off. */
static void vv_deliver(struct sock *sk, u16 dom, const struct vv_hdr *h,
		       u32 off)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	struct vv_sock *vv = vsk->trans;
	u32 flags = le32_to_cpu(h->flags);
	u32 len = le32_to_cpu(h->len);
	struct vv_chunk *c;

	/*
	 * Stream messages are for stream sockets (defensive: the core's bound
	 * and connected tables, which found sk, hold no datagram socket).
	 */
	if (!vv_is_stream(sk)) {
		vv_reply_rst(dom, h);
		return;
	}
	/* A listener has no transport of its own: its children get one. */
	if (sk->sk_state == TCP_LISTEN) {
		if ((flags & (VV_SYN | VV_ACK | VV_RST)) == VV_SYN)
			vv_accept(sk, dom, h);
		else
			vv_reply_rst(dom, h);
		return;
	}
	if (vsk->transport != &vv_transport || !vv) {
		vv_reply_rst(dom, h);
		return;
	}

	switch (sk->sk_state) {

	case TCP_SYN_SENT:
		if (vv->peer_dom != dom)
			return;
		if (flags & VV_RST) {
			/*
			 * Nobody listens there. ECONNRESET, not ECONNREFUSED:
			 * that is what the in-kernel vsock transports report
			 * and what vsock programs (and Linux's vsock_test)
			 * expect from a refused connect.
			 */
			sk->sk_state = TCP_CLOSE;
			sk->sk_err = ECONNRESET;
			sk_error_report(sk);
			return;
		}
		if ((flags & (VV_SYN | VV_ACK)) != (VV_SYN | VV_ACK)) {
			vv_reply_rst(dom, h);
			return;
		}
		vv_take_credit(vv, h);
		sk->sk_state = TCP_ESTABLISHED;
		sk->sk_socket->state = SS_CONNECTED;
		vsock_insert_connected(vsk);
		vv_probe_start();
		sk->sk_state_change(sk);
		return;

	case TCP_ESTABLISHED:
		break;

	default:
		vv_reply_rst(dom, h);
		return;
	}

	if (vv->peer_dom != dom || vv->reset)
		return;
	if (flags & VV_RST) {
		vv_set_reset(sk, ECONNRESET);
		vv_peer_done(vsk);
		return;
	}
	vv_take_credit(vv, h);

	if ((flags & VV_DATA) && len) {
		/* The peer must stay within the credit it was given. */
		if ((u64)vv->rx_bytes + len > vv->buf_alloc ||
		    (vsk->peer_shutdown & SEND_SHUTDOWN))
			goto abort;
		c = kvmalloc(struct_size(c, data, len), GFP_KERNEL | __GFP_NOWARN);
		if (!c)
			goto abort;
		c->len = len;
		c->off = 0;
		vv_ring_read(off, c->data, len);
		list_add_tail(&c->node, &vv->rx_q);
		vv->rx_bytes += len;
		sk->sk_data_ready(sk);
	}
	if (flags & (VV_SHUT_RD | VV_SHUT_WR)) {
		if (flags & VV_SHUT_RD)
			vsk->peer_shutdown |= RCV_SHUTDOWN;
		if (flags & VV_SHUT_WR)
			vsk->peer_shutdown |= SEND_SHUTDOWN;
		sk->sk_state_change(sk);
		sk->sk_write_space(sk);
		if ((vsk->peer_shutdown & SHUTDOWN_MASK) == SHUTDOWN_MASK) {
			vv_peer_done(vsk);
			return;
		}
	}
	if (flags & VV_CREDIT_REQ)
		vv_sock_ctl(vsk, VV_ACK);
	return;
abort:
	vv_sock_ctl(vsk, VV_RST);
	vv_set_reset(sk, ECONNRESET);
	vv_peer_done(vsk);
}

/* One stream message from dom, header already read; payload at off. */
static void vv_dispatch(u16 dom, const struct vv_hdr *h, u32 off)
{
	struct sockaddr_vm src, dst;
	struct sock *sk;

	if (le32_to_cpu(h->flags) != VV_DATA)
		vv_dbg("rx dom%u flags %#x %u->%u len %u\n", dom,
		       le32_to_cpu(h->flags), le32_to_cpu(h->src_port),
		       le32_to_cpu(h->dst_port), le32_to_cpu(h->len));

	vsock_addr_init(&src, vv_dom_to_cid(dom), le32_to_cpu(h->src_port));
	vsock_addr_init(&dst, vv_get_local_cid(), le32_to_cpu(h->dst_port));
	sk = vsock_find_connected_socket(&src, &dst);
	if (!sk)
		sk = vsock_find_bound_socket(&dst);
	if (!sk) {
		vv_reply_rst(dom, h);
		return;
	}
	lock_sock(sk);
	vv_deliver(sk, dom, h, off);
	release_sock(sk);
	sock_put(sk);
}

static void vv_wake_blocked(void)
{
	struct vv_sock *vv;

	if (!atomic_read(&vv_blocked))
		return;
	spin_lock_bh(&vv_socks_lock);
	list_for_each_entry(vv, &vv_socks, node) {
		if (vv->tx_blocked) {
			WRITE_ONCE(vv->tx_blocked, false);
			atomic_dec(&vv_blocked);
			sk_vsock(vv->vsk)->sk_write_space(sk_vsock(vv->vsk));
		}
	}
	spin_unlock_bh(&vv_socks_lock);
}

/* Every message of one datagram socket's ring onto its receive queue. */
static bool vv_dgram_drain(struct vv_sock *vv)
{
	const u32 len = VV_DGRAM_PAGES * PAGE_SIZE - 64;
	struct sock *sk = sk_vsock(vv->vsk);
	struct v4v_ring_message_header mh;
	struct v4v_ring *r = vv->dring;
	struct vv_dgram_cb *cb;
	struct sk_buff *skb;
	bool consumed = false;
	u32 rx, tx, plen, off;

	rx = READ_ONCE(r->rx_ptr);
	for (;;) {
		tx = READ_ONCE(r->tx_ptr);
		virt_rmb();
		if (rx == tx)
			break;
		if (tx >= len || (tx & 15) || rx >= len || (rx & 15))
			break;
		memcpy(&mh, r->ring + rx, sizeof(mh));
		if (mh.len < sizeof(mh) || V4V_ROUNDUP(mh.len) >= len) {
			rx = tx;
		} else {
			plen = mh.len - sizeof(mh);
			off = rx + sizeof(mh);
			if (off >= len)
				off -= len;
			skb = alloc_skb(plen, GFP_KERNEL | __GFP_NOWARN);
			if (skb) {
				vv_rread(r, len, off, skb_put(skb, plen), plen);
				cb = (struct vv_dgram_cb *)skb->cb;
				cb->cid = mh.source.domain < VV_DOMID_LIMIT ?
					  vv_dom_to_cid(mh.source.domain) : VMADDR_CID_ANY;
				cb->port = mh.source.port;
				/* A full receive queue drops, as UDP does. */
				if (sock_queue_rcv_skb(sk, skb))
					kfree_skb(skb);
			}
			rx += V4V_ROUNDUP(mh.len);
			if (rx >= len)
				rx -= len;
		}
		virt_mb();
		WRITE_ONCE(r->rx_ptr, rx);
		consumed = true;
	}
	return consumed;
}

static bool vv_dgram_rx(void)
{
	struct vv_sock *vv;
	bool consumed = false;

	mutex_lock(&vv_dgram_lock);
	list_for_each_entry(vv, &vv_dgrams, dnode)
		consumed |= vv_dgram_drain(vv);
	mutex_unlock(&vv_dgram_lock);
	return consumed;
}

static void vv_rx(struct work_struct *work)
{
	struct v4v_ring_message_header mh;
	u32 rx, tx, mlen, plen, off;
	bool consumed = false;
	struct vv_hdr h;

	vv_wake_blocked();
	vv_flush_ctl();

	rx = READ_ONCE(vv_ring->rx_ptr);
	for (;;) {
		tx = READ_ONCE(vv_ring->tx_ptr);
		virt_rmb();
		if (rx == tx)
			break;
		if (tx >= VV_RING_LEN || (tx & 15) || rx >= VV_RING_LEN ||
		    (rx & 15)) {
			pr_err_ratelimited("ring pointers corrupt (rx %u tx %u)\n",
					   rx, tx);
			break;
		}
		/* Headers sit at 16-byte offsets and never wrap. */
		memcpy(&mh, vv_ring->ring + rx, sizeof(mh));
		mlen = mh.len;
		if (mlen < sizeof(mh) || V4V_ROUNDUP(mlen) >= VV_RING_LEN) {
			pr_err_ratelimited("bad message length %u\n", mlen);
			rx = tx;	/* drop everything: the ring is unusable */
			goto publish;
		}
		plen = mlen - sizeof(mh);
		off = rx;
		vv_ring_skip(&off, sizeof(mh));
		if (mh.protocol != V4V_PROTO_STREAM)
			vv_dbg("rx dom%u: protocol %#x dropped\n",
			       mh.source.domain, mh.protocol);
		if (mh.protocol == V4V_PROTO_STREAM && plen >= sizeof(h) &&
		    mh.source.domain < VV_DOMID_LIMIT) {
			vv_ring_read(off, &h, sizeof(h));
			vv_ring_skip(&off, sizeof(h));
			if (le32_to_cpu(h.len) == plen - sizeof(h))
				vv_dispatch(mh.source.domain, &h, off);
		}
		vv_ring_skip(&rx, V4V_ROUNDUP(mlen));
publish:
		/* Everything read out of the slot before Xen may reuse it. */
		virt_mb();
		WRITE_ONCE(vv_ring->rx_ptr, rx);
		consumed = true;
		cond_resched();
	}
	if (vv_dgram_rx())
		consumed = true;
	if (consumed)
		v4v_call(V4V_OP_NOTIFY, 0, 0, 0, 0, 0);
	vv_wake_blocked();
	vv_flush_ctl();
}

static irqreturn_t vv_interrupt(int irq, void *dev_id)
{
	atomic_inc(&vv_virq_gen);
	queue_work(vv_wq, &vv_rx_work);
	return IRQ_HANDLED;
}

/* ---- peer liveness ------------------------------------------------------ */

static void vv_reset_dead(struct sock *sk)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	struct vv_sock *vv = vsk->trans;

	if (!vv || sk->sk_state != TCP_ESTABLISHED || READ_ONCE(vv->reset) ||
	    !test_bit(vv->peer_dom, vv_dead))
		return;
	/* Under vsock_table_lock: no lock_sock, only flags and wakeups. */
	vv_set_reset(sk, ECONNRESET);
}

/*
 * Notify with the stream rings of up to VV_MAX_PROBE watched peers from
 * *dom on; marks in vv_dead those whose ring is gone. Returns whether any
 * is, and moves *dom past the peers asked about.
 */
static bool vv_probe_batch(struct v4v_ring_data *rd, unsigned long *dom)
{
	u16 doms[VV_MAX_PROBE];
	bool any_dead = false;
	unsigned int n = 0, i;

	while (*dom < VV_DOMID_LIMIT && n < VV_MAX_PROBE) {
		doms[n++] = *dom;
		*dom = find_next_bit(vv_watch, VV_DOMID_LIMIT, *dom + 1);
	}
	memset(rd, 0, struct_size(rd, data, VV_MAX_PROBE));
	rd->magic = V4V_RING_DATA_MAGIC;
	rd->nent = n;
	for (i = 0; i < n; i++) {
		rd->data[i].ring.port = VV_STREAM_PORT;
		rd->data[i].ring.domain = doms[i];
	}
	if (v4v_call(V4V_OP_NOTIFY, (unsigned long)rd, 0, 0, 0, 0) != 0)
		return false;
	for (i = 0; i < n; i++) {
		if (rd->data[i].flags & V4V_RING_DATA_F_EXISTS)
			continue;
		set_bit(doms[i], vv_dead);
		any_dead = true;
	}
	return any_dead;
}

static void vv_probe(struct work_struct *work)
{
	struct v4v_ring_data *rd;
	struct vv_sock *vv;
	unsigned long dom;
	bool watching = false, any_dead = false;

	bitmap_zero(vv_watch, VV_DOMID_LIMIT);
	spin_lock_bh(&vv_socks_lock);
	list_for_each_entry(vv, &vv_socks, node) {
		struct sock *sk = sk_vsock(vv->vsk);

		/*
		 * A peer that shut down both ways can neither send nor
		 * receive: its death changes nothing here, and the socket
		 * is no longer in the connected table vv_reset_dead() walks.
		 */
		if (!vv_is_stream(sk) ||
		    READ_ONCE(sk->sk_state) != TCP_ESTABLISHED ||
		    READ_ONCE(vv->reset) ||
		    (READ_ONCE(vv->vsk->peer_shutdown) & SHUTDOWN_MASK) ==
		    SHUTDOWN_MASK)
			continue;
		set_bit(vv->peer_dom, vv_watch);
		watching = true;
	}
	spin_unlock_bh(&vv_socks_lock);

	if (watching) {
		bitmap_zero(vv_dead, VV_DOMID_LIMIT);
		rd = kmalloc(struct_size(rd, data, VV_MAX_PROBE), GFP_KERNEL);
		if (rd) {
			dom = find_first_bit(vv_watch, VV_DOMID_LIMIT);
			while (dom < VV_DOMID_LIMIT)
				any_dead |= vv_probe_batch(rd, &dom);
			kfree(rd);
		}
		if (any_dead)
			vsock_for_each_connected_socket(&vv_transport,
							vv_reset_dead);
	}
	/* Also a safety net for a lost wakeup or a control message. */
	vv_wake_blocked();
	vv_flush_ctl();
	spin_lock_bh(&vv_ctl_lock);
	if (!list_empty(&vv_ctl_q))
		watching = true;
	spin_unlock_bh(&vv_ctl_lock);
	if (watching || atomic_read(&vv_blocked))
		vv_probe_start();
}

/* ---- the ring and the module -------------------------------------------- */

/*
 * A receive ring of npages vmalloc'ed pages at V4V port `port`, any
 * sender; on success Xen has written our domain id into its id.
 */
static struct v4v_ring *vv_ring_create(u32 port, unsigned int npages, long *rcp)
{
	struct v4v_pfn_list *pl;
	struct v4v_ring *r;
	unsigned int i;
	long rc;

	r = vzalloc(npages * PAGE_SIZE);
	if (!r) {
		*rcp = -ENOMEM;
		return NULL;
	}
	pl = kzalloc(struct_size(pl, pages, npages), GFP_KERNEL);
	if (!pl) {
		vfree(r);
		*rcp = -ENOMEM;
		return NULL;
	}
	r->magic = V4V_RING_MAGIC;
	r->id.addr.port = port;
	r->id.addr.domain = V4V_DOMID_ANY;
	r->id.partner = V4V_DOMID_ANY;
	r->len = npages * PAGE_SIZE - 64;
	pl->magic = V4V_PFN_LIST_MAGIC;
	pl->npage = npages;
	/*
	 * Frame numbers as Xen's get_page_from_gfn() takes them: machine
	 * frames for a PV guest, the guest's own frame numbers for a
	 * translated one (PVH, HVM), whose p2m Xen walks itself.
	 * xen_page_to_gfn() gives whichever this kernel runs as (it is the
	 * pfn when XENFEAT_auto_translated_physmap is set).
	 */
	for (i = 0; i < npages; i++)
		pl->pages[i] = xen_page_to_gfn(vmalloc_to_page((u8 *)r +
							       i * PAGE_SIZE));
	rc = v4v_call(V4V_OP_REGISTER_RING, (unsigned long)r,
		      (unsigned long)pl, 0, 0, 0);
	kfree(pl);
	if (rc < 0) {
		vfree(r);
		*rcp = rc;
		return NULL;
	}
	*rcp = 0;
	return r;
}

static void vv_ring_destroy(struct v4v_ring *r)
{
	long rc;

	if (!r)
		return;
	rc = v4v_call(V4V_OP_UNREGISTER_RING, (unsigned long)r, 0, 0, 0, 0);
	if (rc < 0)
		/* Xen may still hold the pages: leak them rather than reuse. */
		pr_err("unregister_ring port %#x: %ld; ring memory leaked\n",
		       r->id.addr.port, rc);
	else
		vfree(r);
}

static int vv_register_ring(void)
{
	long rc;

	vv_ring = vv_ring_create(VV_STREAM_PORT, VV_RING_PAGES, &rc);
	if (!vv_ring) {
		pr_err("register_ring: %ld\n", rc);
		return rc == -ENOSYS ? -ENODEV : (int)rc;
	}
	/* Xen wrote our domain id into the ring id. */
	vv_domid = READ_ONCE(vv_ring->id.addr.domain);
	return 0;
}

static void vv_unregister_ring(void)
{
	vv_ring_destroy(vv_ring);
	vv_ring = NULL;
}

static int __init vv_module_init(void)
{
	int rc;

	v4v_abi_layout_check();
	vv_layout_check();
	if (!xen_domain())
		return -ENODEV;

	rc = vv_register_ring();
	if (rc)
		return rc;

	vv_wq = alloc_ordered_workqueue("vsock-v4v", 0);
	if (!vv_wq) {
		rc = -ENOMEM;
		goto err_ring;
	}
	INIT_WORK(&vv_rx_work, vv_rx);
	INIT_DELAYED_WORK(&vv_probe_work, vv_probe);

	rc = bind_virq_to_irqhandler(VIRQ_V4V, 0, vv_interrupt, 0,
				     "vsock-v4v", NULL);
	if (rc < 0) {
		pr_err("bind VIRQ_V4V: %d\n", rc);
		goto err_wq;
	}
	vv_irq = rc;

	rc = vsock_core_register(&vv_transport,
				 VSOCK_TRANSPORT_F_G2H | VSOCK_TRANSPORT_F_DGRAM);
	if (rc) {
		pr_err("vsock_core_register: %d\n", rc);
		goto err_irq;
	}
	/* Anything that arrived before the VIRQ was bound. */
	queue_work(vv_wq, &vv_rx_work);
	pr_info("domain %u is CID %u; stream ring port %#x, %lu bytes; ring frames are %s frames\n",
		vv_domid, vv_get_local_cid(), VV_STREAM_PORT,
		(unsigned long)VV_RING_LEN,
		xen_feature(XENFEAT_auto_translated_physmap) ? "guest" : "machine");
	return 0;

err_irq:
	unbind_from_irqhandler(vv_irq, NULL);
	vv_irq = -1;
err_wq:
	destroy_workqueue(vv_wq);
err_ring:
	vv_unregister_ring();
	return rc;
}

static void __exit vv_module_exit(void)
{
	struct vv_ctl *c, *n;

	/*
	 * Every socket that used this transport held a reference on the
	 * module, so none is left: rmmod with open sockets fails with EBUSY.
	 */
	vsock_core_unregister(&vv_transport);
	WRITE_ONCE(vv_stopping, true);
	unbind_from_irqhandler(vv_irq, NULL);
	/* rx first: it may start the probe (until vv_stopping is seen). */
	cancel_work_sync(&vv_rx_work);
	cancel_delayed_work_sync(&vv_probe_work);
	destroy_workqueue(vv_wq);
	vv_unregister_ring();
	list_for_each_entry_safe(c, n, &vv_ctl_q, node) {
		list_del(&c->node);
		kfree(c);
	}
	pr_info("unloaded, ring released\n");
}

module_init(vv_module_init);
module_exit(vv_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("AF_VSOCK transport over the V4V hypercall");
