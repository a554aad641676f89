#!/usr/bin/env bash
# Captures real kernel logs from the VM runner as parser fixtures
# (test/fixtures/kmsg/real-*.log): the notes' crash (bug-pfnmap), a sysrq-c
# panic, a WARN from test/fixtures/warn-module, and the module's events of the
# notes' test1 read back with dmesg; for each installed kernel.  Run it after
# `npm run build`; the tests only read what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
out=test/fixtures/kmsg
hm() { node dist/cli/main.js "$@"; }
for k in $(node dist/cli/main.js kernels --json | node -e 'for (const k of JSON.parse(require("fs").readFileSync(0))) if (k.usable) console.log(k.version)'); do
	short=${k%%-*}; short=${short%.*}            # 6.1.0-56-amd64 -> 6.1, 6.12.117+deb12-amd64 -> 6.12
	case "$k" in 6.1.*) short=6.1 ;; 6.12.*) short=6.12 ;; esac
	hm build --kernel "$k" --no-addon
	wdir="build/fixtures/warn/$k"
	mkdir -p "$wdir" && cp test/fixtures/warn-module/{hm_warn.c,Kbuild} "$wdir/"
	make -s -C "/lib/modules/$k/build" M="$PWD/$wdir" modules
	# The notes' crash: the console of its own VM boot.
	hm vm --kernel "$k" --console-log "$out/real-$short-bug-pfnmap.console.log" --stop-at='---\[ end trace' -- \
		node dist/cli/main.js run bug-pfnmap --native --allow-crash
	# sysrq-c: a panic on the console.
	hm vm --kernel "$k" --console-log "$out/real-$short-sysrq-panic.console.log" -- sh -c 'echo c > /proc/sysrq-trigger' || true
	# A WARN from a module, and the notes' test1 events, as dmesg prints them.
	hm vm --kernel "$k" --rw "$out" -- sh -c "
		insmod $wdir/hm_warn.ko 2>/dev/null; dmesg > $out/real-$short-warn.dmesg.log
		dmesg -C; node dist/cli/main.js run --native test1 >/dev/null; dmesg > $out/real-$short-test1.dmesg.log"
done
