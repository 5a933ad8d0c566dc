#!/usr/bin/env bash
# bench/vm.sh: the vm backend's figures, in one run:
#
#   image build   `twinstage image build images/debian-pg15.ini` into an empty
#                 cache (cold: debootstrap, then the disk), then again (cached)
#   overlay       what a dev side costs on a 2 GiB and an 8 GiB base disk: the
#                 qcow2 overlay twinstage makes (a libvirt storage volume with a
#                 backing store, here through virsh vol-create-as), against a
#                 copy of the disk (cp), what a user would do to get a second VM
#   boot          `twinstage up` on the vm backend: each guest, from start to
#                 the first accepted connection (the times twinstage prints)
#   rehearsal     `twinstage rehearse` of scenarios/invoices on vm, against the
#                 same on instance (two local clusters)
#
# Needs root and libvirt's daemons: they are started here when not running
# and stopped at the end. COLD=0 skips the cold image build (it downloads and
# takes minutes); SIZES="2 8" (GiB) by default.
source "$(dirname "$0")/common.sh"
SIZES=${SIZES:-2 8}
COLD=${COLD:-1}
libvirt_up
trap 'libvirt_down; cleanup' EXIT

echo "== image build (images/debian-pg15.ini)"
if [ "$COLD" = 1 ]; then
	t=$(now)
	TWINSTAGE_IMAGE_CACHE=$WORK/cache "$TWINSTAGE" image build -q "$ROOT/images/debian-pg15.ini" >/dev/null
	cold=$(elapsed "$t")
	t=$(now)
	TWINSTAGE_IMAGE_CACHE=$WORK/cache "$TWINSTAGE" image build -q "$ROOT/images/debian-pg15.ini" >/dev/null
	cached=$(elapsed "$t")
	report "image build: cached vs cold" "$cached" "$cold" "cached instant"
	rm -rf "$WORK/cache"
fi
BASE=$("$TWINSTAGE" image build -q "$ROOT/images/debian-pg15.ini")

echo "== overlay (dev side's disk) vs a copy of the base"
for g in $SIZES; do
	dd if=/dev/urandom of="$WORK/base.raw" bs=1M count=$((g * 1024)) status=none
	qemu-img convert -O qcow2 "$WORK/base.raw" "$WORK/base.qcow2" && rm -f "$WORK/base.raw"
	sync
	virsh -q pool-create-as tsbench-$$ dir --target "$WORK" >/dev/null
	t=$(now)
	virsh -q vol-create-as tsbench-$$ overlay.qcow2 "${g}G" --format qcow2 \
		--backing-vol "$WORK/base.qcow2" --backing-vol-format qcow2 >/dev/null
	ov=$(elapsed "$t")
	virsh -q pool-destroy tsbench-$$ >/dev/null
	t=$(now)
	cp "$WORK/base.qcow2" "$WORK/copy.qcow2" && sync "$WORK/copy.qcow2"
	cp_s=$(elapsed "$t")
	report "overlay on a ${g} GiB base" "$ov" "$cp_s" "O(1): the same at every size"
	rm -f "$WORK/base.qcow2" "$WORK/overlay.qcow2" "$WORK/copy.qcow2"
done

echo "== boot to ready, and a whole rehearsal: vm against instance"
rehearse_vs_instance vm 4x
echo "accelerator: $(head -2 "${TWINSTAGE_IMAGE_CACHE:-/var/cache/twinstage/images}/kvm-probe" 2>/dev/null | tail -1)"
