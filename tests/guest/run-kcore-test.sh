#!/bin/bash
# run-kcore-test.sh [PROBE_BINARY]
# Boots Debian's kernel under qemu TCG (as shared/tools/linux-dumps/make-dumps.sh does) with a
# busybox initramfs whose /init runs our static examples/kcore_probe (kvm_nlist linux_banner +
# kvm_read from /proc/kcore, compared with /proc/version), then again with kptr_restrict=2
# (kallsyms zeros: a clear error), and powers off. One boot, ~20 s.
# Exit 0: PASS; 1: FAIL; 77: skipped (prints "skipped: <reason>").
# Env: KVM_GUEST_KERNEL (a bzImage; default /boot/vmlinuz-*-amd64, else $KVM_LINUX_DUMPS/vmlinuz).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
skip() { echo "skipped: $*"; exit 77; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "cpio not installed"
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
	skip "no static /bin/busybox (apt-get install busybox-static)"
KERNEL=${KVM_GUEST_KERNEL:-}
if [ -z "$KERNEL" ]; then
	KERNEL=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -1 || true)
	[ -n "$KERNEL" ] || KERNEL=${KVM_LINUX_DUMPS:-$REPO/target/linux-dumps}/vmlinuz
fi
[ -r "$KERNEL" ] || skip "no guest kernel ($KERNEL unreadable; apt-get install linux-image-amd64)"

PROBE=${1:-}
if [ -z "$PROBE" ]; then
	[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || skip "no static glibc (apt-get install libc6-dev)"
	# Own target dir: this may run from inside `cargo test`, which holds target/'s lock.
	TD=$REPO/target/kcore-probe
	(cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build -q --example kcore_probe --target x86_64-unknown-linux-gnu --target-dir "$TD") >&2
	PROBE=$TD/x86_64-unknown-linux-gnu/debug/examples/kcore_probe
fi
file -L "$PROBE" | grep -q -E 'static(-pie)? linked|statically linked' || { echo "FAIL: $PROBE is not statically linked"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcore-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$R"/{bin,dev,proc,sys}
cp /bin/busybox "$R/bin/busybox"
for a in sh mount cat echo poweroff sleep; do ln -s busybox "$R/bin/$a"; done
cp "$PROBE" "$R/bin/kcore_probe"
cat > "$R/init" <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "KCORE-GUEST: $(cat /proc/version)"
echo "KCORE-GUEST: kptr_restrict=$(cat /proc/sys/kernel/kptr_restrict)"
/bin/kcore_probe
echo "KCORE-GUEST: probe exited with $?"
echo 2 > /proc/sys/kernel/kptr_restrict
/bin/kcore_probe --hidden
poweroff -f
EOF
chmod 755 "$R/init"
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
(cd "$R" && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) > "$WORK/initramfs.cpio.gz"

T0=$(date +%s)
timeout 300 qemu-system-x86_64 -accel tcg -m 256M -smp 1 -cpu max,la57=off -nographic -nodefaults \
	-monitor none -no-reboot -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet" -serial "file:$WORK/console.log" \
	</dev/null >"$WORK/qemu.out" 2>&1 || true
T1=$(date +%s)
tr -d '\r' < "$WORK/console.log" > "$WORK/console.txt"
grep -a -E '^KCORE-(GUEST|PROBE):' "$WORK/console.txt" || true
echo "guest run: $((T1 - T0)) s, kernel $KERNEL"
if grep -a -q '^KCORE-PROBE: PASS$' "$WORK/console.txt" &&
	grep -a -q '^KCORE-PROBE: PASS hidden$' "$WORK/console.txt"; then
	echo "PASS"
	exit 0
fi
echo "FAIL: no PASS line from the guest; console tail:"
tail -20 "$WORK/console.txt"
cat "$WORK/qemu.out"
exit 1
