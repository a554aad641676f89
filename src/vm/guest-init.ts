// PID 1 of the guest, run by busybox from the initramfs.  It mounts the host
// root (9p, read-only) under a tmpfs overlay so every host path exists at the
// same place, runs the command in a chroot with its stdout/stderr on their own
// virtio ports, writes the exit status to a third port, and powers off from
// the initramfs side: running anything from the 9p root after the command has
// finished would race the 9p teardown.

/** Kernel command-line words the init script understands. */
export const SPEC_PARAM = 'hm.spec';
export const PROBE_PARAM = 'hm.probe';
/** The guest stops before mounting the host root, for a snapshot (snapshot.ts), and reads its spec from the console. */
export const SNAPSHOT_PARAM = 'hm.snapshot';
/** What the init script prints when it waits there. */
export const SNAPSHOT_READY = 'hybridmem-init: ready for a snapshot';

/** virtio-serial port names, shared by the QEMU arguments and the init script. */
export const PORTS = { stdin: 'hm.stdin', stdout: 'hm.stdout', stderr: 'hm.stderr', status: 'hm.status' } as const;

/** 9p mount tag of the host root filesystem. */
export const ROOT_TAG = 'hostroot';

/** Status the init script reports when it could not run the command at all. */
export const INIT_FAILED_STATUS = 125;

/** The busybox applets the init script runs, linked into /bin of the initramfs. */
export const APPLETS = ['sh', 'mount', 'insmod', 'mkdir', 'usleep', 'poweroff', 'chroot', 'ip', 'env', 'date'];

/** Guest host name, set by the kernel (hostname=, Linux 5.19+) rather than by one more process. */
export const GUEST_HOSTNAME = 'hybridmem-vm';

/** 9p mount options of the root and of every writable share. */
export const NINEP_OPTS = 'trans=virtio,version=9p2000.L,msize=512000';

/** Where the init script's mount tables live in the initramfs. */
export const FSTAB_EARLY = '/etc/fstab.early';
export const FSTAB_ROOT = '/etc/fstab.newroot';

/**
 * The mount tables, mounted with one \`mount -a\` each: under TCG every
 * fork and exec costs milliseconds, and one mount per filesystem cost
 * 60 ms of every boot.  The overlay's upper layer lives in the initramfs's
 * own tmpfs (/upper, /work), so it needs no mount of its own, and /dev/pts
 * and /dev/shm are made once in /dev: devtmpfs has a single instance, so
 * they appear under /newroot/dev as well.
 */
export const FSTABS: Record<string, string> = {
	[FSTAB_EARLY]: ['proc /proc proc defaults 0 0', 'sysfs /sys sysfs defaults 0 0', 'devtmpfs /dev devtmpfs defaults 0 0'].join('\n') + '\n',
	[FSTAB_ROOT]:
		[
			`${ROOT_TAG} /lower 9p ${NINEP_OPTS},ro,cache=loose 0 0`,
			'overlay /newroot overlay lowerdir=/lower,upperdir=/upper,workdir=/work 0 0',
			'proc /newroot/proc proc defaults 0 0',
			'sysfs /newroot/sys sysfs defaults 0 0',
			'devtmpfs /newroot/dev devtmpfs defaults 0 0',
			'devpts /newroot/dev/pts devpts defaults 0 0',
			'tmpfs /newroot/dev/shm tmpfs defaults 0 0',
			'tmpfs /newroot/run tmpfs defaults 0 0',
		].join('\n') + '\n',
};

/** Directories the initramfs needs besides /bin, /dev, /proc, /sys and /lib/modules. */
export const INIT_DIRS = ['etc', 'lower', 'upper', 'work', 'newroot'];

export const GUEST_INIT = `#!/bin/busybox sh
export PATH=/bin
mount -a -T ${FSTAB_EARLY}
mkdir /dev/pts /dev/shm
# The loopback interface comes up while the modules load.
ip link set lo up 2>/dev/null &

say() { echo "hybridmem-init: $*" > /dev/console; }

# Modules are named LEVEL-NAME.ko: those of one level depend only on lower
# levels and built-ins, so they load in parallel, one level at a time.
level=0
while :; do
	set -- /lib/modules/$level-*.ko
	[ -e "$1" ] || break
	for m; do
		{ insmod "$m" || say "cannot load $m"; } &
	done
	wait
	level=$((level + 1))
done
wait

# virtio-serial ports get their names from the host shortly after the driver
# binds: wait for all four in one scan per round, instead of guessing
# device numbers (and without a subshell per lookup).
inp= out= err= st=
ports() {
	i=0
	while [ $i -lt 500 ]; do
		for p in /sys/class/virtio-ports/*; do
			[ -e "$p/name" ] || continue
			read -r n < "$p/name"
			case "$n" in
			${PORTS.stdin}) inp="/dev/\${p##*/}" ;;
			${PORTS.stdout}) out="/dev/\${p##*/}" ;;
			${PORTS.stderr}) err="/dev/\${p##*/}" ;;
			${PORTS.status}) st="/dev/\${p##*/}" ;;
			esac
		done
		[ -n "$inp" ] && [ -n "$out" ] && [ -n "$err" ] && [ -n "$st" ] && return 0
		i=$((i + 1))
		usleep 10000
	done
	return 1
}

finish() {
	[ -n "$st" ] || ports
	[ -n "$st" ] && echo "$1" > "$st"
	poweroff -f
}

spec=
read -r cmdline < /proc/cmdline
for w in $cmdline; do
	case "$w" in
	${PROBE_PARAM}) finish 0 ;;
	${SPEC_PARAM}=*) spec="\${w#${SPEC_PARAM}=}" ;;
	${SNAPSHOT_PARAM})
		# Saved here (9p is not mounted yet, so QEMU can migrate), or restored:
		# either way this run's spec and the host's clock come on the console.
		echo "${SNAPSHOT_READY}" > /dev/console
		read -r spec now < /dev/console
		date -s "@$now" > /dev/null ;;
	esac
done
[ -n "$spec" ] || { say "no ${SPEC_PARAM}= on the command line"; finish ${INIT_FAILED_STATUS}; }

mount -a -T ${FSTAB_ROOT} ||
	{ say "cannot mount the host root over 9p with an overlay on it"; finish ${INIT_FAILED_STATUS}; }
while read -r tag dir; do
	[ -n "$tag" ] || continue
	mount -t 9p -o ${NINEP_OPTS} "$tag" "/newroot$dir" ||
		{ say "cannot mount $dir writable"; finish ${INIT_FAILED_STATUS}; }
done < "/lower$spec/mounts"

ports || { say "virtio ports missing"; finish ${INIT_FAILED_STATUS}; }
# env -i from the initramfs: one dynamic executable fewer to load over 9p.
env -i /bin/chroot /newroot /bin/sh "$spec/run.sh" < "$inp" > "$out" 2> "$err"
finish $?
`;
