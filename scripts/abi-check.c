// SPDX-License-Identifier: GPL-2.0-only
//
// abi-check, C side: print every constant and every structure layout of the
// V4V guest ABI as the C header xen/include/public/v4v.h (with xen.h) states
// them. abi/examples/abi_dump.rs prints the same from the Rust ABI crate;
// `make abi-check` diffs the two. The lists here are written from the ABI
// document, independently of the Rust crate, so that a name missing on
// either side shows up as a difference.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <public/v4v.h>

#define CONST(name) printf("const %s 0x%llx\n", #name, (unsigned long long)(name))
#define SIZE(s) printf("size %s %zu\n", #s, sizeof(struct s))
#define FIELD(s, f) printf("offset %s.%s %zu\n", #s, #f, offsetof(struct s, f))
#define ELEM(s, f) printf("elem %s.%s %zu\n", #s, #f, sizeof(((struct s *)0)->f[0]))
#define ROUNDUP(a) printf("roundup %llu %llu\n", (unsigned long long)(a), \
                          (unsigned long long)V4V_ROUNDUP((uint64_t)(a)))

int main(void)
{
    CONST(__HYPERVISOR_v4v_op);
    CONST(VIRQ_V4V);
    CONST(V4VOP_register_ring);
    CONST(V4VOP_unregister_ring);
    CONST(V4VOP_send);
    CONST(V4VOP_notify);
    CONST(V4VOP_sendv);
    CONST(V4VOP_viptables_add);
    CONST(V4VOP_viptables_del);
    CONST(V4VOP_viptables_list);
    CONST(V4V_RING_MAGIC);
    CONST(V4V_PFN_LIST_MAGIC);
    CONST(V4V_RING_DATA_MAGIC);
    CONST(V4V_PROTO_DGRAM);
    CONST(V4V_PROTO_STREAM);
    CONST(V4V_DOMID_ANY);
    CONST(V4V_PORT_NONE);
    CONST(V4V_DOMID_WILDCARD);
    CONST(V4V_PORT_ANY);
    CONST(V4V_MIN_RING_SIZE);
    CONST(V4V_MAX_RING_SIZE);
    CONST(V4V_MAX_RING_PAGES);
    CONST(V4V_MAX_MSG_SIZE);
    CONST(V4V_MAXIOV);
    CONST(V4V_MAXENT);
    CONST(V4V_VIPTABLES_LIST_SIZE);
    CONST(V4V_RING_DATA_F_EMPTY);
    CONST(V4V_RING_DATA_F_EXISTS);
    CONST(V4V_RING_DATA_F_PENDING);
    CONST(V4V_RING_DATA_F_SUFFICIENT);
    CONST(V4V_SHF_SYN);
    CONST(V4V_SHF_ACK);
    CONST(V4V_SHF_RST);
    CONST(V4V_SHF_PING);
    CONST(V4V_SHF_PONG);

    SIZE(v4v_addr);
    FIELD(v4v_addr, port);
    FIELD(v4v_addr, domain);

    SIZE(v4v_ring_id);
    FIELD(v4v_ring_id, addr);
    FIELD(v4v_ring_id, partner);

    SIZE(v4v_iov);
    FIELD(v4v_iov, iov_base);
    FIELD(v4v_iov, iov_len);

    SIZE(v4v_pfn_list);
    FIELD(v4v_pfn_list, magic);
    FIELD(v4v_pfn_list, npage);
    FIELD(v4v_pfn_list, pad);
    FIELD(v4v_pfn_list, reserved);
    FIELD(v4v_pfn_list, pages);
    ELEM(v4v_pfn_list, pages);

    SIZE(v4v_ring);
    FIELD(v4v_ring, magic);
    FIELD(v4v_ring, id);
    FIELD(v4v_ring, len);
    FIELD(v4v_ring, rx_ptr);
    FIELD(v4v_ring, tx_ptr);
    FIELD(v4v_ring, reserved);
    FIELD(v4v_ring, ring);
    ELEM(v4v_ring, ring);

    SIZE(v4v_ring_message_header);
    FIELD(v4v_ring_message_header, len);
    FIELD(v4v_ring_message_header, source);
    FIELD(v4v_ring_message_header, pad);
    FIELD(v4v_ring_message_header, protocol);

    SIZE(v4v_ring_data_ent);
    FIELD(v4v_ring_data_ent, ring);
    FIELD(v4v_ring_data_ent, flags);
    FIELD(v4v_ring_data_ent, space_required);
    FIELD(v4v_ring_data_ent, max_message_size);

    SIZE(v4v_ring_data);
    FIELD(v4v_ring_data, magic);
    FIELD(v4v_ring_data, nent);
    FIELD(v4v_ring_data, pad);
    FIELD(v4v_ring_data, reserved);
    FIELD(v4v_ring_data, data);
    ELEM(v4v_ring_data, data);

    SIZE(v4v_viptables_rule);
    FIELD(v4v_viptables_rule, src);
    FIELD(v4v_viptables_rule, dst);
    FIELD(v4v_viptables_rule, accept);

    SIZE(v4v_viptables_list);
    FIELD(v4v_viptables_list, rules);
    FIELD(v4v_viptables_list, nb_rules);

    ROUNDUP(0);
    ROUNDUP(1);
    ROUNDUP(15);
    ROUNDUP(16);
    ROUNDUP(17);
    ROUNDUP(16777184);

    return 0;
}
