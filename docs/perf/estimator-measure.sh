#!/usr/bin/env bash
# docs/perf/estimator.md's harness, as root: boots N QEMU guests (TCG, 256 MiB) as QemuGuestsKsmTest
# does, runs `scan --json --use-zero-pages --pid` ROUNDS times with each of two samepage.jar files,
# alternating, under /usr/bin/time -v, then kernel KSM once at full rate, and writes OUT/summary.txt.
# Usage: N=4 ROUNDS=3 OUT=dir docs/perf/estimator-measure.sh BASE_JAR NEW_JAR
# Hold the e2e KSM lock around it (a POSIX lock, as the test takes it; a file it creates is 0666, as
# HostKsmLock makes it, so that a test run by another user can take it too):
#   python3 -c 'import fcntl,os,subprocess,sys; os.umask(0); f=open("/tmp/samepage-e2e-kernel-ksm.lock","a");
#     fcntl.lockf(f, fcntl.LOCK_EX); sys.exit(subprocess.call(sys.argv[1:]))' docs/perf/estimator-measure.sh A B
set -euo pipefail
N=${N:-4}; ROUNDS=${ROUNDS:-3}; BASE_JAR=$1; NEW_JAR=$2; OUT=${OUT:-/tmp/est-perf/out}
JAVA=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java
W=$(mktemp -d); mkdir -p $OUT
cat > $W/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=100m tmpfs /mnt
yes SAMEPAGE-FILL | head -c 50331648 > /mnt/pattern
dd if=/dev/zero of=/mnt/zeros bs=1M count=32 2>/dev/null
sync
echo SAMEPAGE-GUEST-READY
while true; do sleep 3600; done
INIT
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
cleanup() { for p in "${pids[@]}"; do kill -9 $p 2>/dev/null || true; done; restore; rm -rf $W; }
K=/sys/kernel/mm/ksm
declare -A saved
for k in pages_to_scan sleep_millisecs use_zero_pages run; do saved[$k]=$(cat $K/$k); done
restore() { echo 2 > $K/run; for k in pages_to_scan sleep_millisecs use_zero_pages; do echo ${saved[$k]} > $K/$k; done; echo ${saved[run]} > $K/run; }
trap cleanup EXIT
for i in $(seq 0 $((N-1))); do
  qemu-system-x86_64 -name samepage-perf-$i -accel tcg -m 256 -smp 1 -nodefaults -nographic -display none -no-reboot \
    -serial file:$W/console-$i.txt -kernel /var/cache/samepage/kernel/vmlinuz -initrd $W/initramfs.cpio \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null >$W/qemu-$i.txt 2>&1 &
  pids+=($!)
done
for t in $(seq 1 720); do
  ready=0; for i in $(seq 0 $((N-1))); do grep -q SAMEPAGE-GUEST-READY $W/console-$i.txt 2>/dev/null && ready=$((ready+1)); done
  [ $ready -eq $N ] && break; sleep 0.25
done
echo "ready: $ready of $N guests" | tee $OUT/summary.txt
P=$(IFS=,; echo "${pids[*]}")
for r in $(seq 1 $ROUNDS); do
  for which in base new; do
    jar=$BASE_JAR; [ $which = new ] && jar=$NEW_JAR
    /usr/bin/time -v -o $OUT/time-$which-$r.txt $JAVA --enable-native-access=ALL-UNNAMED \
      --add-exports java.base/jdk.internal.misc=ALL-UNNAMED -jar $jar scan --json --use-zero-pages --pid $P > $OUT/scan-$which-$r.json
    rss=$(awk -F': ' '/Maximum resident/{print $2}' $OUT/time-$which-$r.txt)
    cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' $OUT/time-$which-$r.txt)
    wall=$(awk -F': ' '/Elapsed/{print $2}' $OUT/time-$which-$r.txt)
    sav=$(python3 -c "import json;d=json.load(open('$OUT/scan-$which-$r.json'));print(d['pages_sharing']+d['ksm_zero_pages'], sum(g.get('pages_resident',0) for g in d['guests']))")
    echo "round $r $which: max_rss_kib=$rss cpu_s=$cpu wall=$wall saving_pages,resident_pages=$sav" | tee -a $OUT/summary.txt
  done
done
/usr/bin/time -v -o $OUT/time-jvm.txt $JAVA --enable-native-access=ALL-UNNAMED \
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED -jar $NEW_JAR scan --help > /dev/null
echo "jvm floor (scan --help, new jar): max_rss_kib=$(awk -F': ' '/Maximum resident/{print $2}' $OUT/time-jvm.txt) cpu_s=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' $OUT/time-jvm.txt)" | tee -a $OUT/summary.txt
pss() { local s=0; for p in "${pids[@]}"; do v=$(awk '/^Pss_Anon:/{print $2}' /proc/$p/smaps_rollup); s=$((s+v)); done; echo $s; }
ksmd=$(pgrep -x ksmd); tick=$(getconf CLK_TCK)
kt() { awk '{s=$0; sub(/.*\) /,"",s); split(s,f," "); print f[12]+f[13]}' /proc/$ksmd/stat; }
pss0=$(pss); t0=$(kt); fs0=$(cat $K/full_scans)
echo 0 > $K/run; echo 1 > $K/use_zero_pages; echo 100000 > $K/pages_to_scan; echo 0 > $K/sleep_millisecs; echo 1 > $K/run
: > $OUT/ksm-progress.txt; last=-1; lastsav=-1; stable=0
while true; do
  fs=$(cat $K/full_scans); sav=$(( $(cat $K/pages_sharing) + $(cat $K/ksm_zero_pages) )); echo "$(( $(kt) - t0 )) $sav $fs" >> $OUT/ksm-progress.txt
  if [ $fs -ne $last ]; then if [ $sav -eq $lastsav ]; then stable=$((stable + fs - last)); else stable=0; fi; last=$fs; lastsav=$sav; fi
  [ $fs -ge $((fs0+3)) ] && [ $stable -ge 2 ] && break; sleep 0.2
done
echo 0 > $K/run
pss1=$(pss)
final=$(tail -1 $OUT/ksm-progress.txt | cut -d' ' -f2)
t99=$(awk -v f=$final '$2 >= 0.99*f {print $1; exit}' $OUT/ksm-progress.txt)
tend=$(tail -1 $OUT/ksm-progress.txt | cut -d' ' -f1)
echo "ksm: pss_anon_drop_pages=$(( (pss0-pss1)/4 )) ksm_counters_final=$final ksmd_cpu_s_to_99pct=$(echo "scale=2; $t99/$tick" | bc) ksmd_cpu_s_to_converged=$(echo "scale=2; $tend/$tick" | bc) clk_tck=$tick" | tee -a $OUT/summary.txt
