#!/bin/bash
# Archive throughput and memory: 8 files of 256 MiB (distinct contents) for one client, then the archive of
# them streamed to /dev/null while the server's RSS is sampled, beside tar of the same blobs.
set -e
BIN=${BIN:-target/release/cairn}
D=/tmp/archbench; rm -rf $D; mkdir -p $D
$BIN serve --data $D/data --listen 127.0.0.1:18777 --token bench-admin-token-0123456789 --durability normal > $D/serve.log 2>&1 &
PID=$!
sleep 1.5
T=bench-admin-token-0123456789
made=$(curl -s -H "authorization: Bearer $T" -H 'content-type: application/json' -d '{"name":"big"}' http://127.0.0.1:18777/api/clients)
ID=$(echo "$made" | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["client"]["id"])')
for i in 1 2 3 4 5 6 7 8; do
  head -c $((256<<20)) /dev/urandom > $D/f.bin
  curl -s -o /dev/null -X POST -T $D/f.bin -H "authorization: Bearer $T" "http://127.0.0.1:18777/api/clients/$ID/files?name=part-$i.bin"
done
rm -f $D/f.bin
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
echo "rss before: $(grep VmRSS /proc/$PID/status)"
( while kill -0 $PID 2>/dev/null; do grep VmRSS /proc/$PID/status | awk '{print $2}' >> $D/rss.txt; sleep 0.2; done ) &
SAMPLER=$!
for round in 1 2 3; do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  s=$(date +%s.%N); curl -s -H "authorization: Bearer $T" "http://127.0.0.1:18777/api/clients/$ID/archive" -o /dev/null; e=$(date +%s.%N)
  echo "archive round $round: $(echo "$e - $s" | bc) s"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  s=$(date +%s.%N); tar cf - -C $D/data blobs | cat > /dev/null; e=$(date +%s.%N)
  echo "tar round $round: $(echo "$e - $s" | bc) s"
done
echo "rss max during: $(sort -n $D/rss.txt | tail -1) KiB; samples $(wc -l < $D/rss.txt)"
kill $SAMPLER 2>/dev/null || true
kill -TERM $PID; wait $PID || true
du -sb $D/data/blobs
