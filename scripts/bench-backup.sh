#!/bin/bash
# A snapshot of a data directory (cairn backup) beside cp -a of the same directory: time and size, three
# interleaved rounds, the page cache dropped before each. Usage: bench-backup.sh DATA_DIR
set -e
BIN=${BIN:-target/release/cairn}
DATA=$1
OUT=${OUT:-/tmp/bench-backup}
rm -rf "$OUT"; mkdir -p "$OUT"
for round in 1 2 3; do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  s=$(date +%s.%N); $BIN backup "$OUT/snap-$round" --data "$DATA" > /dev/null; e=$(date +%s.%N)
  snap=$(echo "$e - $s" | bc)
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  s=$(date +%s.%N); cp -a "$DATA" "$OUT/cp-$round"; e=$(date +%s.%N)
  cp=$(echo "$e - $s" | bc)
  echo "round $round: cairn backup ${snap} s, cp -a ${cp} s"
done
echo "snapshot apparent size: $(du -sb --apparent-size "$OUT/snap-1" | cut -f1) bytes; new space taken: $(du -sb "$OUT/snap-1" | cut -f1) bytes (du counts hard-linked blobs once per tree)"
echo "cp -a size: $(du -sb "$OUT/cp-1" | cut -f1) bytes"
s=$(date +%s.%N); $BIN backup --verify "$OUT/snap-1"; e=$(date +%s.%N); echo "verify: $(echo "$e - $s" | bc) s"
