#!/usr/bin/env bash
# bench/dualboot.sh: the dual-boot station's figures, in one run:
#
#   build    `twinstage dualboot build images/debian-pg15.ini` into an empty
#            station cache (cold: two libguestfs sessions, two root copies),
#            then again (cached: a copy of the cached station)
#   select   `twinstage dualboot select DISK dev`: the default entry flipped
#            with libguestfs (the issue's figure: about 12 s; no baseline: a
#            user would edit the file in a libguestfs shell the same way)
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
STATION=${IMAGE%.qcow2}.station.qcow2

echo "== build (images/debian-pg15.ini)"
rm -f "$STATION"
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
printf '%-44s twinstage %8.3f s   (issue: about 12 s)\n' "select dev (flip the default entry)" "$(elapsed "$t")"

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

echo "== a whole rehearsal: dualboot against instance"
libvirt_up
rehearse_vs_instance dualboot 5x
