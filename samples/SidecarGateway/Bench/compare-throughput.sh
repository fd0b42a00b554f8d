#!/usr/bin/env bash
# Same-run throughput of two builds of the gateway sample (e.g. before and after a change), each in
# its demo mode (embedded coordinator, "homelab" node, gateway; all on loopback), measured with curl:
# a streamed download and an upload of SIZE bytes through each, ROUNDS times, alternating A and B so
# both see the same machine load. Prints every run and the median MB/s of each; the figure to quote
# is the ratio B/A.
#
#   samples/SidecarGateway/Bench/compare-throughput.sh A.dll B.dll [SIZE] [ROUNDS]
set -euo pipefail
a_dll=$1; b_dll=$2; size=${3:-268435456}; rounds=${4:-5}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() { # name dll port
  dotnet "$2" --Gateway:Urls="http://127.0.0.1:$3" > "$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do
    grep -q "Ctrl+C to stop" "$work/$1.log" && return 0
    sleep 0.2
  done
  echo "$1 did not start:"; cat "$work/$1.log"; exit 1
}

start A "$a_dll" 15181
start B "$b_dll" 15182
head -c "$size" /dev/urandom > "$work/upload.bin"

down() { curl -sS --fail -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$1/homelab/bytes/$size?chunked=true"; }
up() { curl -sS --fail -o /dev/null -w '%{speed_upload}' -H 'Content-Type: application/octet-stream' --data-binary "@$work/upload.bin" "http://127.0.0.1:$1/homelab/sha256"; }

for r in $(seq 1 "$rounds"); do
  for side in A B; do
    port=$([ $side = A ] && echo 15181 || echo 15182)
    d=$(down $port); u=$(up $port)
    echo "round $r $side download $d B/s upload $u B/s"
    echo "$d" >> "$work/$side.down"; echo "$u" >> "$work/$side.up"
  done
done

median() { sort -n "$1" | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.1f", m/1e6}'; }
for side in A B; do
  echo "$side median: download $(median "$work/$side.down") MB/s, upload $(median "$work/$side.up") MB/s"
done
awk -v ad="$(median "$work/A.down")" -v bd="$(median "$work/B.down")" -v au="$(median "$work/A.up")" -v bu="$(median "$work/B.up")" \
  'BEGIN { printf "ratio B/A: download %.2f, upload %.2f\n", bd/ad, bu/au }'
