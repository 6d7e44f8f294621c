#!/usr/bin/env bash
# docs/perf/sketch.md's harness, as root: boots 5 QEMU guests (TCG, 256 MiB, busybox initramfs, as
# docs/perf/estimator-measure.sh does) whose tmpfs each holds 4 blocks of BLOCK_MIB MiB chosen from
# 13 distinct ones (block X is the output of `seq` over a range of its own, so its pages are distinct
# and the same in every guest that holds X):
#   guest 0: A B C D   guest 1: A B C D   guest 2: A B E F   guest 3: A G H I   guest 4: J K L M
# so pairs share all, half, a quarter or none of their blocks (and, all of them, the kernel, busybox and
# QEMU's own pages). Runs `samepage scan --json --pid` once over the 5 QEMU processes (exact pairwise
# shared_contents, and a sketch per guest), then `samepage similar --json` on that JSON, and writes OUT/
# scan.json, similar.json, table.md (per pair: exact, estimate, relative error; median and max) and
# summary.txt. Touches no KSM knob, so it needs no KSM lock. About two minutes.
# Usage: BLOCK_MIB=16 OUT=dir docs/perf/sketch-measure.sh [SAMEPAGE_JAR]   (default cli/target/samepage.jar)
set -euo pipefail
BLOCK_MIB=${BLOCK_MIB:-16}; OUT=${OUT:-/tmp/sketch-perf/out}; JAR=${1:-cli/target/samepage.jar}
JAVA=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java
LAYOUTS=("A B C D" "A B C D" "A B E F" "A G H I" "J K L M")
N=${#LAYOUTS[@]}
W=$(mktemp -d); mkdir -p $OUT
cat > $W/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=200m tmpfs /mnt
lines=$(( BLOCK_MIB * 1048576 / 10 ))
for b in $(sed -n 's/.*blocks=\([A-Z,]*\).*/\1/p' /proc/cmdline | tr , ' '); do
  i=$(awk -v b=$b 'BEGIN { print index("ABCDEFGHIJKLMNOPQRSTUVWXYZ", b) - 1 }')
  first=$(( 100000000 + i * 10000000 ))
  seq $first $(( first + lines - 1 )) > /mnt/$b
done
sync
echo SAMEPAGE-GUEST-READY
while true; do sleep 3600; done
INIT
sed -i "s/BLOCK_MIB \*/$BLOCK_MIB */" $W/init
python3 - $W/init > $W/initramfs.cpio <<'PY'
import sys
# newc archive as QemuGuestsKsmTest writes it: dirs, two device nodes, busybox, sh link, init
busybox = open('/bin/busybox','rb').read(); init = open(sys.argv[1],'rb').read()
out = bytearray(); ino = [1]
def pad():
    while len(out) % 4: out.append(0)
def entry(name, mode, rdev, data):
    nb = (name + '\0').encode()
    h = '070701' + ''.join('%08x' % v for v in [ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev >> 8, rdev & 0xff, len(nb), 0])
    ino[0] += 1
    out.extend(h.encode()); out.extend(nb); pad(); out.extend(data); pad()
for d in ['bin','dev','proc','sys','mnt','tmp']: entry(d, 0o040755, 0, b'')
entry('dev/console', 0o020600, (5 << 8) | 1, b''); entry('dev/null', 0o020666, (1 << 8) | 3, b'')
entry('bin/busybox', 0o100755, 0, busybox); entry('bin/sh', 0o120777, 0, b'busybox'); entry('init', 0o100755, 0, init)
entry('TRAILER!!!', 0, 0, b'')
sys.stdout.buffer.write(out)
PY
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 $p 2>/dev/null || true; done; rm -rf $W; }
trap cleanup EXIT
for i in $(seq 0 $((N-1))); do
  blocks=$(echo ${LAYOUTS[$i]} | tr ' ' ,)
  qemu-system-x86_64 -name samepage-sketch-$i -accel tcg -m 256 -smp 1 -nodefaults -nographic -display none -no-reboot \
    -serial file:$W/console-$i.txt -kernel /var/cache/samepage/kernel/vmlinuz -initrd $W/initramfs.cpio \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init blocks=$blocks" </dev/null >$W/qemu-$i.txt 2>&1 &
  pids+=($!); disown $!
done
for t in $(seq 1 2400); do
  ready=0; for i in $(seq 0 $((N-1))); do grep -q SAMEPAGE-GUEST-READY $W/console-$i.txt 2>/dev/null && ready=$((ready+1)); done
  [ $ready -eq $N ] && break; sleep 0.25
done
echo "ready: $ready of $N guests; blocks of $BLOCK_MIB MiB; layouts: $(printf '[%s] ' "${LAYOUTS[@]}")" | tee $OUT/summary.txt
[ $ready -eq $N ] || { cat $W/console-*.txt; exit 1; }
P=$(IFS=,; echo "${pids[*]}")
/usr/bin/time -v -o $OUT/time-scan.txt $JAVA --enable-native-access=ALL-UNNAMED \
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED -jar $JAR scan --json --pid $P > $OUT/scan.json
$JAVA --enable-native-access=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED -jar $JAR \
  similar --json $OUT/scan.json > $OUT/similar.json
echo "scan: cpu_s=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' $OUT/time-scan.txt) max_rss_kib=$(awk -F': ' '/Maximum resident/{print $2}' $OUT/time-scan.txt)" | tee -a $OUT/summary.txt
python3 - $OUT "${LAYOUTS[@]}" <<'PY' | tee $OUT/table.md | tee -a $OUT/summary.txt
import json, statistics, sys
out, layouts = sys.argv[1], [l.split() for l in sys.argv[2:]]
scan = json.load(open(out + '/scan.json')); similar = json.load(open(out + '/similar.json'))
names = [g['name'] for g in scan['guests']]
# The bottom-k estimate's relative standard error for a pair of Jaccard index J is about
# sqrt((1 - J) / (J k)); J from the exact shared contents and the sketches' distinct counts.
k = scan['guests'][0]['sketch']['k']
print('| guests | blocks in common | exact shared_contents | sketch estimate | relative error | Jaccard index | standard error, predicted |')
print('|---|---:|---:|---:|---:|---:|---:|')
errors = []
for exact, est in zip(scan['pairs'], similar['pairs']):
    a, b = names.index(exact['a']), names.index(exact['b'])
    assert est['guest_a'].endswith(':' + exact['a']) and est['guest_b'].endswith(':' + exact['b'])
    common = len(set(layouts[a]) & set(layouts[b]))
    e = (est['shared_pages'] - exact['shared_contents']) / exact['shared_contents']
    errors.append(abs(e))
    shared = exact['shared_contents']
    j = shared / (scan['guests'][a]['sketch']['distinct_pages'] + scan['guests'][b]['sketch']['distinct_pages'] - shared)
    print('| %d, %d | %d of 4 | %d | %d | %+.1f%% | %.2f | %.1f%% |'
          % (a, b, common, shared, est['shared_pages'], 100 * e, j, 100 * ((1 - j) / (j * k)) ** 0.5))
print()
print('|error|: median %.1f%%, max %.1f%% over %d pairs; pages read per guest: %s; sketch distinct_pages per guest: %s'
      % (100 * statistics.median(errors), 100 * max(errors), len(errors),
         ', '.join(str(g['pages_read']) for g in scan['guests']),
         ', '.join('%.0f' % g['sketch']['distinct_pages'] for g in scan['guests'])))
PY
