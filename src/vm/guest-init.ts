// PID 1 of the guest, run by busybox from the initramfs.  It mounts the host
// root (9p, read-only) under a tmpfs overlay so every host path exists at the
// same place, runs the command in a chroot with its stdout/stderr on their own
// virtio ports, writes the exit status to a third port, and powers off from
// the initramfs side: running anything from the 9p root after the command has
// finished would race the 9p teardown.

/** Kernel command-line words the init script understands. */
export const SPEC_PARAM = 'hm.spec';
export const PROBE_PARAM = 'hm.probe';

/** virtio-serial port names, shared by the QEMU arguments and the init script. */
export const PORTS = { stdout: 'hm.stdout', stderr: 'hm.stderr', status: 'hm.status' } as const;

/** 9p mount tag of the host root filesystem. */
export const ROOT_TAG = 'hostroot';

/** Status the init script reports when it could not run the command at all. */
export const INIT_FAILED_STATUS = 125;

/** The busybox applets the init script runs, linked into /bin of the initramfs. */
export const APPLETS = ['sh', 'mount', 'insmod', 'mkdir', 'usleep', 'poweroff', 'chroot', 'hostname', 'ip', 'cat'];

export const GUEST_INIT = `#!/bin/busybox sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "hybridmem-init: $*" > /dev/console; }

for m in /lib/modules/*.ko; do
	[ -e "$m" ] || continue
	insmod "$m" || say "cannot load $m"
done

# virtio-serial ports get their names from the host shortly after the driver
# binds: wait for them instead of guessing device numbers.
port() {
	i=0
	while [ $i -lt 500 ]; do
		for p in /sys/class/virtio-ports/*; do
			[ -e "$p/name" ] || continue
			read -r n < "$p/name"
			[ "$n" = "$1" ] && { echo "/dev/\${p##*/}"; return 0; }
		done
		i=$((i + 1))
		usleep 10000
	done
	return 1
}

finish() {
	st=$(port ${PORTS.status}) && echo "$1" > "$st"
	poweroff -f
}

spec=
for w in $(cat /proc/cmdline); do
	case "$w" in
	${PROBE_PARAM}) finish 0 ;;
	${SPEC_PARAM}=*) spec="\${w#${SPEC_PARAM}=}" ;;
	esac
done
[ -n "$spec" ] || { say "no ${SPEC_PARAM}= on the command line"; finish ${INIT_FAILED_STATUS}; }

mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose ${ROOT_TAG} /lower ||
	{ say "cannot mount the host root over 9p"; finish ${INIT_FAILED_STATUS}; }
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	{ say "cannot mount the overlay"; finish ${INIT_FAILED_STATUS}; }
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
while read -r tag dir; do
	[ -n "$tag" ] || continue
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "$tag" "/newroot$dir" ||
		{ say "cannot mount $dir writable"; finish ${INIT_FAILED_STATUS}; }
done < "/lower$spec/mounts"
hostname hybridmem-vm
ip link set lo up 2>/dev/null

out=$(port ${PORTS.stdout}) && err=$(port ${PORTS.stderr}) ||
	{ say "virtio ports missing"; finish ${INIT_FAILED_STATUS}; }
chroot /newroot /usr/bin/env -i /bin/sh "$spec/run.sh" < /dev/null > "$out" 2> "$err"
finish $?
`;
