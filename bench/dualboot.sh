#!/usr/bin/env bash
# bench/dualboot.sh: the dual-boot station's figures, in one run:
#
#   build    `twinstage dualboot build images/debian-pg15.ini` into an empty
#            station cache (cold: two libguestfs sessions, two root copies),
#            then again (cached: a copy of the cached station)
#   select   `twinstage dualboot select DISK dev`: the default entry flipped
#            from the host (qemu-img, debugfs, qemu-io), against what a user
#            would do: the file edited in one guestfish session (download,
#            sed, upload; the issue's figure for libguestfs: about 12 s)
#   write    `twinstage dualboot write DISK --device LOOP --yes` (qemu-img,
#            zeros skipped) against what a user would do: qemu-img convert to
#            a raw file, then dd of it to the device
#   rehearse `twinstage rehearse` of scenarios/invoices on dualboot, against
#            the same on instance (goal: within 5x)
#
# Needs root (the image build, loop devices). The recipe's image is built
# first when it is not cached (not timed).
source "$(dirname "$0")/common.sh"
RECIPE=$ROOT/images/debian-pg15.ini
LOOP=""
stop_loop() {
	if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; fi
	libvirt_down
	cleanup
}
trap stop_loop EXIT

IMAGE=$("$TWINSTAGE" image build -q "$RECIPE")

echo "== build (images/debian-pg15.ini)"
rm -f -- "${IMAGE%.qcow2}".station*.qcow2
t=$(now)
"$TWINSTAGE" dualboot build -q "$RECIPE" -o "$WORK/station.qcow2" >/dev/null
cold=$(elapsed "$t")
rm -f "$WORK/station.qcow2"
t=$(now)
"$TWINSTAGE" dualboot build -q "$RECIPE" -o "$WORK/station.qcow2" >/dev/null
cached=$(elapsed "$t")
report "station build: cached vs cold" "$cached" "$cold" "cached: a copy"

echo "== select"
t=$(now)
"$TWINSTAGE" dualboot select -q "$WORK/station.qcow2" dev
ts=$(elapsed "$t")
t=$(now)
# the appliance as twinstage launches it here: direct, and TCG (KVM hangs on
# these machines, and guestfish would wait on it for ever); KVM=1 where it works
if [ "${KVM:-0}" = 1 ]; then tcg=""; else tcg=force_tcg; fi
LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=$tcg \
	guestfish --rw -a "$WORK/station.qcow2" -m /dev/sda1 <<EOF
download /extlinux.conf $WORK/extlinux.conf
! sed -i 's/^DEFAULT .*/DEFAULT prod/' $WORK/extlinux.conf
upload $WORK/extlinux.conf /extlinux.conf
EOF
base=$(elapsed "$t")
report "select dev (flip the default entry)" "$ts" "$base" "no appliance; guestfish: about 12 s"

echo "== write to a loop device vs qemu-img convert + dd"
size=$(qemu-img info --output=json "$WORK/station.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
truncate -s $((size + (64 << 20))) "$WORK/dev.img"
LOOP=$(losetup -f --show "$WORK/dev.img")
t=$(now)
"$TWINSTAGE" dualboot write -q "$WORK/station.qcow2" --device "$LOOP" --yes
sync
ts=$(elapsed "$t")
t=$(now)
qemu-img convert -O raw "$WORK/station.qcow2" "$WORK/station.raw"
dd if="$WORK/station.raw" of="$LOOP" bs=4M conv=fsync status=none
base=$(elapsed "$t")
report "write $(awk -v s="$size" 'BEGIN { printf "%.1f", s / 2^30 }') GiB station to a loop device" "$ts" "$base" "no slower than dd"
# the step's 16 GiB of files and their page cache gone before the next step:
# it measures the rehearsal, not the kernel reclaiming them meanwhile
losetup -d "$LOOP" && LOOP=""
rm -f "$WORK/station.raw" "$WORK/dev.img"

echo "== a whole rehearsal: dualboot against instance"
libvirt_up
rehearse_vs_instance dualboot 5x
