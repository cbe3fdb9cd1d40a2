# The enforcing-FLASK boot: the FLASK hypervisor (XEN_VARIANT=flask, see
# mk/xen.mk), a test policy compiled with checkpolicy, and one boot of the
# Linux dom0 with three labelled test domUs (dom0/flask).
#
#   make flask-policy  build/flask-policy-$(XEN_VERSION)/xenpolicy-v4v-test:
#                      Xen's policy modules from the patched tree, their
#                      blanket V4V grants taken out, plus
#                      xen-patches/flask/v4v_test.te (scripts/flask-policy.sh)
#   make flask-test    Xen built with CONFIG_XSM_FLASK (build/xen-VER-flask),
#                      booted with flask=enforcing and the policy as a boot
#                      module; judged against dom0/flask/expect and the
#                      serial-line checks of dom0/flask/serial-checks (Xen's
#                      AVC denials); log build/results/flask-$(XEN_VERSION).serial
.PHONY: flask-policy flask-test flask-boot

FLASK_POLICY_DIR := $(BUILD)/flask-policy-$(XEN_VERSION)
FLASK_POLICY := $(FLASK_POLICY_DIR)/xenpolicy-v4v-test
FLASK_XEN_EXTRA := xsm=flask flask=enforcing

# From the FLASK tree's policy sources (patch 0006 adds class v4v to them).
flask-policy:
	$(MAKE) --no-print-directory $(FLASK_POLICY) XEN_VARIANT=flask
$(FLASK_POLICY): $(ROOT)/xen-patches/flask/v4v_test.te $(ROOT)/scripts/flask-policy.sh $(XEN_PATCHED) | setup
	bash $(ROOT)/scripts/flask-policy.sh $(XEN_TREE) $(FLASK_POLICY_DIR)

flask-test:
	$(MAKE) --no-print-directory flask-boot XEN_VARIANT=flask

flask-boot: $(SCENARIO_DEPS) $(FLASK_POLICY)
	@mkdir -p $(RESULTS)
	$(DOM0_PACK) $(DOM0_DIR)/flask.cpio $(ROOT)/dom0/flask \
		$(DOM0_GUEST_OVERLAY) $(DOM0_TOOLS_OVERLAY)
	$(MULTI) --initrd $(DOM0_DIR)/flask.cpio --name flask-$(XEN_VERSION) \
		--xen-extra "$(FLASK_XEN_EXTRA)" --module $(FLASK_POLICY) \
		--expect $(ROOT)/dom0/flask/expect --serial-checks $(ROOT)/dom0/flask/serial-checks \
		--counts $(RESULTS)/flask-$(XEN_VERSION).counts
