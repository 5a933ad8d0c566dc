/*
 * guest_init.c: twinstage's own PID 1 for rehearsal guests (guest_init.h).
 *
 * Under software emulation systemd, udev and their units took most of a
 * guest's boot; this init does only what PostgreSQL and the host need (the
 * cluster's start first, going on while the agent and the network come up),
 * and says each step on the serial console. The initramfs has
 * already mounted /proc, /sys, /dev and /run and loaded virtio and ext4;
 * the network is qemu's user-mode one, whose addresses are fixed (the guest
 * 10.0.2.15, the host 10.0.2.2), so no DHCP client is needed.
 */
#include "core/strbuf.h"
#include "env/guest_init.h"

#include <string.h>

/* @V@ stands for the major version. */
static const char script[] =
	"#!/bin/sh\n"
	"# twinstage-init: PID 1 of a twinstage rehearsal guest (kernel option init=" TS_GUEST_INIT ").\n"
	"# Written by `twinstage image build`; `" TS_GUEST_INIT " stop` stops PostgreSQL cleanly.\n"
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
	"export PATH LANG=C.UTF-8\n"
	"DATA=/var/lib/postgresql/@V@/main\n"
	"CONF=/etc/postgresql/@V@/main/postgresql.conf\n"
	"PG_CTL=/usr/lib/postgresql/@V@/bin/pg_ctl\n"
	"say() { echo \"twinstage-init: $*\" > /dev/console; }\n"
	"\n"
	"if [ \"$1\" = stop ]; then\n"
	"\trunuser -u postgres -- \"$PG_CTL\" stop -D \"$DATA\" -m fast -w -t 120 || exit 1\n"
	"\tsync\n"
	"\tsay PostgreSQL stopped, disks flushed\n"
	"\texit 0\n"
	"fi\n"
	"if [ $$ != 1 ]; then\n"
	"\techo \"usage: $0 stop (as PID 1 it boots the guest)\" >&2\n"
	"\texit 2\n"
	"fi\n"
	"\n"
	"for m in proc:/proc sysfs:/sys devtmpfs:/dev tmpfs:/run; do\n"
	"\tmountpoint -q \"${m#*:}\" || mount -t \"${m%%:*}\" \"${m%%:*}\" \"${m#*:}\"\n"
	"done\n"
	"mkdir -p /dev/pts /dev/shm\n"
	"mount -t devpts devpts /dev/pts\n"
	"mount -t tmpfs -o mode=1777 tmpfs /dev/shm\n"
	"mount -o remount,rw / || say could not mount the root read-write\n"
	"\n"
	"# the cluster first, its start (recovery included) going on while the rest is set up: it\n"
	"# listens on every address, eth0's too once it is up (loopback before it: before 15, the\n"
	"# statistics collector's socket)\n"
	"ip link set lo up\n"
	"install -d -o postgres -g postgres -m 2775 /run/postgresql\n"
	"(\n"
	"\tif runuser -u postgres -- \"$PG_CTL\" start -D \"$DATA\" -o \"-c config_file=$CONF\" \\\n"
	"\t\t-l /var/log/postgresql/postgresql-@V@-main.log -s; then\n"
	"\t\tsay PostgreSQL @V@ starting\n"
	"\telse\n"
	"\t\tsay PostgreSQL @V@ did not start:\n"
	"\t\ttail -n 20 /var/log/postgresql/postgresql-@V@-main.log > /dev/console\n"
	"\tfi\n"
	") &\n"
	"read -r name < /etc/hostname && hostname \"$name\"\n"
	"\n"
	"# the guest agent, on the channel libvirt names org.qemu.guest_agent.0 (udev's link, made\n"
	"# here), before the network: up when the host can first reach the cluster (it freezes through it)\n"
	"for port in /sys/class/virtio-ports/*; do\n"
	"\tif [ -r \"$port/name\" ] && [ \"$(cat \"$port/name\")\" = org.qemu.guest_agent.0 ]; then\n"
	"\t\tmkdir -p /dev/virtio-ports\n"
	"\t\tln -sf \"../${port##*/}\" /dev/virtio-ports/org.qemu.guest_agent.0\n"
	"\t\tqemu-ga --daemonize || say the guest agent did not start\n"
	"\tfi\n"
	"done\n"
	"\n"
	"# qemu's user-mode network: fixed addresses, the host's forward arrives on 5432\n"
	"ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 ||\n"
	"\tsay no network on eth0\n"
	"\n"
	"# PID 1 reaps the orphans (postgres, the agent's children) for the guest's life\n"
	"while :; do\n"
	"\tsleep 86400 &\n"
	"\twait\n"
	"done\n";

char *ts_guest_init_script(const char *version)
{
	struct strbuf sb = STRBUF_INIT;

	for (const char *p = script, *at; *p; p = at + 3) {
		if (!(at = strstr(p, "@V@"))) {
			strbuf_addstr(&sb, p);
			break;
		}
		strbuf_add(&sb, p, (size_t)(at - p));
		strbuf_addstr(&sb, version);
	}
	return strbuf_detach(&sb);
}

const char ts_guest_initrd_init[] =
	"#!/bin/busybox sh\n"
	"# twinstage's initrd: the modules a guest needs, its root, its init\n"
	"export PATH=/bin\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t devtmpfs devtmpfs /dev\n"
	"mount -t proc proc /proc\n"
	"while read -r m; do insmod \"/modules.d/$m\" 2>/dev/null; done < /modules\n"
	"root=/dev/vda1 init=/sbin/init from= then= entry=\n"
	"for arg in $(cat /proc/cmdline); do\n"
	"\tcase \"$arg\" in\n"
	"\troot=*) root=${arg#root=} ;;\n"
	"\tinit=*) init=${arg#init=} ;;\n"
	"\ttwinstage.data_from=*) from=${arg#*=} ;;\n"
	"\ttwinstage.then=*) then=${arg#*=} ;;\n"
	"\ttwinstage.entry=*) entry=${arg#*=} ;;\n"
	"\tesac\n"
	"done\n"
	"# root=/dev/vda1, or LABEL=... (the dual-boot station's roots): up to 10 s for it to appear\n"
	"n=0 dev=\n"
	"while [ $n -lt 1000 ]; do\n"
	"\tcase \"$root\" in /dev/*) dev=$root ;; *) dev=$(findfs \"$root\" 2>/dev/null) ;; esac\n"
	"\t[ -n \"$dev\" ] && [ -b \"$dev\" ] && break\n"
	"\tusleep 10000\n"
	"\tn=$((n + 1))\n"
	"done\n"
	"if ! mount -t ext4 -o ro \"$dev\" /root; then\n"
	"\techo \"twinstage initrd: could not mount the root $root\" > /dev/console\n"
	"\tpoweroff -f\n"
	"fi\n"
	"# the dual-boot station's <side>-from-<other> entry: the other root's PostgreSQL data copied\n"
	"# onto this one, then the default entry made <side> (dualboot.c's region, same length, in place)\n"
	"region() {\n"
	"\tpad=#\n"
	"\twhile [ $((8 + ${#1} + 1 + ${#pad} + 1)) -lt " TS_STATION_REGION_STR " ]; do pad=\"$pad#\"; done\n"
	"\tprintf 'DEFAULT %s\\n%s\\n' \"$1\" \"$pad\"\n"
	"}\n"
	"if [ -n \"$from\" ]; then\n"
	"\t# the boot partition: the first of the root's disk (a second disk may have the same labels)\n"
	"\tbdev=${dev%[0-9]}1\n"
	"\tcase \"$from\" in\n"
	"\t/dev/*)\n"
	"\t\t# a partition of a disk the host attaches once it holds the data (a rehearsal's dev side)\n"
	"\t\t[ -b \"$from\" ] ||\n"
	"\t\t\techo \"twinstage initrd: waiting for $from, the disk with the PostgreSQL data to copy\" > /dev/console\n"
	"\t\twhile [ ! -b \"$from\" ]; do usleep 50000; done\n"
	"\t\tfdev=$from ;;\n"
	"\t*) fdev=$(findfs \"$from\") ;;\n"
	"\tesac\n"
	"\techo \"twinstage initrd: first boot of this root: copying the PostgreSQL data of $from\" > /dev/console\n"
	"\tmkdir -p /from /boot\n"
	"\t[ -n \"$fdev\" ] && [ -n \"$bdev\" ] &&\n"
	"\tmount -o remount,rw /root && mount -t ext4 -o ro \"$fdev\" /from &&\n"
	"\trm -rf /root/var/lib/postgresql && cp -a /from/var/lib/postgresql /root/var/lib/ &&\n"
	"\tumount /from && mount -o remount,ro /root && sync || {\n"
	"\t\techo \"twinstage initrd: could not copy the PostgreSQL data of $from\" > /dev/console\n"
	"\t\tpoweroff -f\n"
	"\t}\n"
	"\t# the entry booted (twinstage.entry, or <then>-from-<other>) is the default: <then> is, from now on\n"
	"\t[ -n \"$entry\" ] || entry=\"$then-from-${from#LABEL=twinstage-}\"\n"
	"\tmount -t ext4 \"$bdev\" /boot && {\n"
	"\t\t[ \"$(head -c " TS_STATION_REGION_STR " /boot/extlinux.conf)\" != \"$(region \"$entry\")\" ] ||\n"
	"\t\t\tregion \"$then\" | dd of=/boot/extlinux.conf conv=notrunc 2>/dev/null\n"
	"\t} && umount /boot && sync || {\n"
	"\t\t# booted again as it is, the copy would be made again over what the root has done since\n"
	"\t\techo \"twinstage initrd: could not make $then the default entry\" > /dev/console\n"
	"\t\tpoweroff -f\n"
	"\t}\n"
	"\techo \"twinstage initrd: data copied; the default entry is $then\" > /dev/console\n"
	"fi\n"
	"umount /proc\n"
	"mount --move /dev /root/dev\n"
	"exec switch_root /root \"$init\"\n";

const char *ts_guest_cmdline_tail(int own_init)
{
	return own_init ? " init=" TS_GUEST_INIT : "";
}
