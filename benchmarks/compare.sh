#!/usr/bin/env bash
# Our TCP over our WireGuard (two MeshNodes, tunnelmesh-e2e) beside the references, in one run:
#   loopback   the kernel's TCP over 127.0.0.1 (iperf3; ping; .NET sockets RR): the ceiling
#   veth       the kernel's TCP over the bare veth between two namespaces (no tunnel)
#   wg-go      the kernel's TCP over wireguard-go (TUN) between the same kind of two namespaces:
#              iperf3 (one stream, the same byte count), ping, and 64-byte TCP request/response
#              with .NET sockets (tunnelmesh-e2e --transport kernel over the wg-go path)
#   ours       tunnelmesh-e2e: MeshNode <-> MeshNode in two namespaces joined by a veth pair
# and prints ours / reference.
#
#   sudo bash benchmarks/compare.sh
#   sudo BYTES=2G RR=20000 PINGS=500 KEEP=1 bash benchmarks/compare.sh
#   sudo NO_BUILD=1 bash benchmarks/compare.sh      # reuse the Release build of the tool
#
# Addresses: veth 192.0.2.1 <-> 192.0.2.2 (TEST-NET-1), wg-go tunnel 198.51.100.1 <-> .2
# (TEST-NET-2), both only inside the namespaces made here (named after this script's PID).
# Traffic stays on loopback or inside those namespaces. A watchdog ends the run after MAX_SECS;
# cleanup stops only the PIDs started here and deletes only the namespaces made here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BYTES=${BYTES:-1G}             # stream size for iperf3 -n and tunnelmesh-e2e --bytes (K/M/G are binary in both)
RR=${RR:-10000}                # request/response round trips (tunnelmesh-e2e)
PINGS=${PINGS:-200}            # ping -c, at -i 0.01
PORT=${PORT:-5299}             # iperf3 port
MAX_SECS=${MAX_SECS:-900}      # watchdog for the whole script
STEP_SECS=${STEP_SECS:-300}    # bound on each measurement
NSA=cmp$$a NSB=cmp$$b VA=cmp$$va VB=cmp$$vb
UA=192.0.2.1 UB=192.0.2.2
WGA=198.51.100.1 WGB=198.51.100.2
CLK_TCK=$(getconf CLK_TCK)
TOOL_DLL="$HERE/TunnelMesh.Net.EndToEnd/bin/Release/net10.0/tunnelmesh-e2e.dll"

[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (network namespaces, wireguard-go)" >&2; exit 4; }
T0=$(date +%s)
WORK=$(mktemp -d /tmp/tm-compare.XXXXXX)
PIDS=()
NETNS_MADE=()

log() { printf '[%3ss] %s (load %s)\n' "$(( $(date +%s) - T0 ))" "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2; }
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

stop_pid() { # TERM, wait <= 3 s, then KILL; only PIDs started here
  local pid=$1 i st
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 30); do
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    { [ -z "$st" ] || [ "$st" = Z ]; } && break
    sleep 0.1
  done
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ -n "$st" ] && [ "$st" != Z ] && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  for n in "${NETNS_MADE[@]}"; do ip netns del "$n" 2>/dev/null || true; done  # takes the veth and wg0 with it
  [ -n "${WD:-}" ] && { kill "$WD" 2>/dev/null || true; wait "$WD" 2>/dev/null || true; }
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then echo "compare.sh: raw results in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
( trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$MAX_SECS" & s=$!; wait "$s"
  echo "compare.sh: watchdog: ${MAX_SECS}s exceeded, aborting" >&2; kill -TERM $$ ) </dev/null &
WD=$!

# ------------------------------------------------------------------ packages and the tool
need=()
for b in iperf3:iperf3 wireguard-go:wireguard-go wg:wireguard-tools ping:iputils-ping jq:jq nsenter:util-linux ss:iproute2 unshare:util-linux; do
  command -v "${b%%:*}" >/dev/null || need+=("${b#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  timeout 120 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 180 apt-get install -y -qq --no-install-recommends "${need[@]}" >"$WORK/apt.log"
fi
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
VERS="iperf3 $(ver iperf3), wireguard-go $(ver wireguard-go), wireguard-tools $(ver wireguard-tools), kernel $(uname -r)"

if [ "${NO_BUILD:-0}" != 1 ]; then
  log "building tunnelmesh-e2e (Release)"
  timeout 600 dotnet build "$HERE/TunnelMesh.Net.EndToEnd" -c Release -nologo -v q >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; echo "compare.sh: build failed" >&2; exit 4; }
fi
[ -f "$TOOL_DLL" ] || { echo "compare.sh: $TOOL_DLL missing (build first)" >&2; exit 4; }
e2e() { timeout "$STEP_SECS" dotnet "$TOOL_DLL" "$@" --timeout $((STEP_SECS - 10)); }

# ------------------------------------------------------------------ helpers
ticks() { # summed utime+stime (clock ticks) of the given PIDs
  local t=0 p v
  for p in "$@"; do v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0); t=$((t + v)); done
  echo "$t"
}

ping_p50() { # label ns dst -> PING_RES="p50 p99 mean" in microseconds (from each reply's time=)
  local label=$1 ns=$2 dst=$3 pre=()
  [ -n "$ns" ] && pre=(ip netns exec "$ns")
  timeout 60 "${pre[@]}" ping -n -c "$PINGS" -i 0.01 -W 1 "$dst" >"$WORK/$label.ping" 2>&1 || true
  PING_RES=$(grep -o 'time=[0-9.]*' "$WORK/$label.ping" | cut -d= -f2 | sort -g \
    | awk '{ v[NR] = $1 * 1000; s += $1 * 1000 }
           END { if (NR == 0) { print "- - -"; exit }
                 i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999)
                 printf "%.1f %.1f %.1f\n", v[i50], v[i99], s / NR }')
}

DAEMONS=()
iperf_run() { # label ns_server ns_client dst -> IPERF_RES="gbit_s cpu_s_per_gib retransmits" (cpu: iperf3 both ends + DAEMONS)
  local label=$1 sns=$2 cns=$3 dst=$4 S=() C=() i spid t0 t1
  [ -n "$sns" ] && S=(ip netns exec "$sns")
  [ -n "$cns" ] && C=(ip netns exec "$cns")
  "${S[@]}" timeout "$STEP_SECS" iperf3 -s -1 -p "$PORT" >"$WORK/$label.srv.log" 2>&1 &
  spid=$!; PIDS+=("$spid")
  for i in $(seq 1 50); do
    "${S[@]}" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  t0=$(ticks "${DAEMONS[@]}")
  "${C[@]}" timeout "$STEP_SECS" iperf3 -c "$dst" -p "$PORT" -n "$BYTES" -J >"$WORK/$label.json" 2>"$WORK/$label.cli.err" || true
  t1=$(ticks "${DAEMONS[@]}")
  for i in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$spid"
  IPERF_RES=$(jq -r --argjson d "$(( t1 - t0 ))" --argjson hz "$CLK_TCK" '
      if .error then "- - -" else
        (.end.sum_received.seconds) as $s
        | (.end.sum_received.bytes / 1073741824) as $gib
        | (((.end.cpu_utilization_percent.host_total + .end.cpu_utilization_percent.remote_total) / 100 * $s) + $d / $hz) as $cpu
        | "\(.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000) \($cpu / $gib * 100 | round / 100) \(.end.sum_sent.retransmits)"
      end' "$WORK/$label.json" 2>/dev/null || echo "- - -")
}

make_ns_pair() {
  ip netns add "$NSA"; NETNS_MADE+=("$NSA")
  ip netns add "$NSB"; NETNS_MADE+=("$NSB")
  ip link add "$VA" type veth peer name "$VB"
  ip link set "$VA" netns "$NSA"; ip link set "$VB" netns "$NSB"
  ip -n "$NSA" addr add "$UA/24" dev "$VA"; ip -n "$NSB" addr add "$UB/24" dev "$VB"
  for n in "$NSA" "$NSB"; do ip -n "$n" link set lo up; done
  ip -n "$NSA" link set "$VA" up; ip -n "$NSB" link set "$VB" up
}

wait_ping() { # ns dst, bounded
  local i
  for i in $(seq 1 40); do
    ip netns exec "$1" ping -n -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "compare.sh: $2 not reachable from $1" >&2; return 1
}

# ------------------------------------------------------------------ 1. loopback ceiling
log "loopback: ping, iperf3 -n $BYTES, .NET sockets RR"
ping_p50 loopback "" 127.0.0.1; read -r LO_P50 LO_P99 LO_MEAN <<<"$PING_RES"
DAEMONS=(); iperf_run loopback "" "" 127.0.0.1; read -r LO_GBPS LO_CPU LO_RETR <<<"$IPERF_RES"
e2e --transport kernel --mode loopback --tests rr --rr "$RR" --label kernel-loopback >"$WORK/kernel-loopback.out" 2>"$WORK/kernel-loopback.err" \
  || { cat "$WORK/kernel-loopback.err" >&2; echo "compare.sh: kernel loopback RR failed" >&2; exit 1; }
LO_RR=$(tail -1 "$WORK/kernel-loopback.out" | jq -r '.rr.p50_us')

# ------------------------------------------------------------------ 2. veth and wireguard-go
make_ns_pair
wait_ping "$NSA" "$UB"
log "veth: ping, iperf3"
ping_p50 veth "$NSA" "$UB"; read -r VE_P50 VE_P99 VE_MEAN <<<"$PING_RES"
DAEMONS=(); iperf_run veth "$NSB" "$NSA" "$UB"; read -r VE_GBPS VE_CPU VE_RETR <<<"$IPERF_RES"

# wireguard-go's UAPI socket lives in the filesystem (/run/wireguard/wg0.sock), which network
# namespaces do not separate: each daemon gets a private mount namespace with its own tmpfs there,
# and `wg` runs inside that mount + network namespace via nsenter.
mkdir -p /run/wireguard
wg_start() { # ns -> WGPID (ip, env, unshare and sh all exec, so $! is wireguard-go itself)
  ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error \
    unshare --mount --propagation private \
    sh -c 'mount -t tmpfs -o size=1m,mode=0700 tmpfs /run/wireguard && exec wireguard-go -f wg0' \
    >"$WORK/wg-$1.log" 2>&1 &
  WGPID=$!
}
umask 077
wg genkey >"$WORK/wga.key"; wg pubkey <"$WORK/wga.key" >"$WORK/wga.pub"
wg genkey >"$WORK/wgb.key"; wg pubkey <"$WORK/wgb.key" >"$WORK/wgb.pub"
umask 022
wg_start "$NSA"; WPA=$WGPID; PIDS+=("$WPA")
wg_start "$NSB"; WPB=$WGPID; PIDS+=("$WPB")
for p in "$WPA" "$WPB"; do
  for i in $(seq 1 50); do nsenter -t "$p" -m test -S /run/wireguard/wg0.sock 2>/dev/null && break; sleep 0.1; done
  nsenter -t "$p" -m test -S /run/wireguard/wg0.sock || { cat "$WORK"/wg-*.log >&2; echo "compare.sh: wireguard-go did not start" >&2; exit 4; }
done
nsenter -t "$WPA" -m -n wg set wg0 listen-port 51820 private-key "$WORK/wga.key" \
  peer "$(cat "$WORK/wgb.pub")" endpoint "$UB:51820" allowed-ips "$WGB/32"
nsenter -t "$WPB" -m -n wg set wg0 listen-port 51820 private-key "$WORK/wgb.key" \
  peer "$(cat "$WORK/wga.pub")" endpoint "$UA:51820" allowed-ips "$WGA/32"
ip -n "$NSA" addr add "$WGA/24" dev wg0; ip -n "$NSA" link set wg0 mtu 1420 up
ip -n "$NSB" addr add "$WGB/24" dev wg0; ip -n "$NSB" link set wg0 mtu 1420 up
wait_ping "$NSA" "$WGB"   # also completes the handshake, so it is not in the figures
log "wg-go: ping, iperf3, .NET sockets RR and stream over the tunnel"
ping_p50 wg-go "$NSA" "$WGB"; read -r WG_P50 WG_P99 WG_MEAN <<<"$PING_RES"
DAEMONS=("$WPA" "$WPB"); iperf_run wg-go "$NSB" "$NSA" "$WGB"; read -r WG_GBPS WG_CPU WG_RETR <<<"$IPERF_RES"
t0=$(ticks "$WPA" "$WPB")
e2e --transport kernel --netns "$NSA,$NSB" --server-address "$WGB" --client-address "$WGA" --tests rr --rr "$RR" --label kernel-wg-go \
  >"$WORK/kernel-wg-go.out" 2>"$WORK/kernel-wg-go.err" \
  || { cat "$WORK/kernel-wg-go.err" >&2; echo "compare.sh: kernel RR over wireguard-go failed" >&2; exit 1; }
t1=$(ticks "$WPA" "$WPB")
WG_RR=$(tail -1 "$WORK/kernel-wg-go.out" | jq -r '.rr.p50_us')
WG_RR99=$(tail -1 "$WORK/kernel-wg-go.out" | jq -r '.rr.p99_us')
WG_RR_DAEMON_US=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$RR" 'BEGIN{printf "%.1f", d / hz / n * 1e6}')
WG_RR_CPU_US=$(tail -1 "$WORK/kernel-wg-go.out" | jq -r --argjson dd "$WG_RR_DAEMON_US" '(.rr.client.cpu_us_per_rt + .rr.server.cpu_us_per_rt + $dd) * 10 | round / 10')
stop_pid "$WPA"; stop_pid "$WPB"
for n in "$NSA" "$NSB"; do ip netns del "$n"; done
NETNS_MADE=()

# ------------------------------------------------------------------ 3. ours
log "ours: tunnelmesh-e2e --bytes $BYTES --rr $RR (its own namespaces)"
e2e --mode netns --bytes "$BYTES" --rr "$RR" --label ours >"$WORK/ours.out" 2>"$WORK/ours.err" \
  || { cat "$WORK/ours.out" "$WORK/ours.err" >&2; echo "compare.sh: tunnelmesh-e2e failed" >&2; exit 1; }
OURS=$(tail -1 "$WORK/ours.out")
grep -v '^{' "$WORK/ours.out"
q() { jq -r "$1" <<<"$OURS"; }
O_GBPS=$(q '.stream.gbit_s'); O_CPU=$(q '.stream.cpu_s_per_gib_both')
O_P50=$(q '.rr.p50_us'); O_P99=$(q '.rr.p99_us')
O_RR_CPU=$(q '(.rr.client.cpu_us_per_rt + .rr.server.cpu_us_per_rt) * 10 | round / 10')
O_ALLOC_C=$(q '.stream.client.alloc_bytes_per_packet'); O_ALLOC_S=$(q '.stream.server.alloc_bytes_per_packet')
O_RR_ALLOC=$(q '(.rr.client.alloc_bytes_per_packet + .rr.server.alloc_bytes_per_packet) / 2 * 10 | round / 10')

# ------------------------------------------------------------------ 4. table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "== tunnelmesh-e2e vs references  $(date -u +%FT%TZ)  $(nproc) cpu $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
echo "== $VERS; stream $BYTES one TCP stream a->b; RR $RR x 64 B; ping -c $PINGS -i 0.01"
echo "== load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews all rows)"
printf '%-34s %12s %14s %8s  %s\n' metric ours reference ratio reference_is
printf '%-34s %12s %14s %8s  %s\n' "stream Gbit/s" "$O_GBPS" "$WG_GBPS" "$(ratio "$O_GBPS" "$WG_GBPS")" "kernel TCP over wireguard-go, iperf3 (target ratio >= 3)"
printf '%-34s %12s %14s %8s  %s\n' "stream cpu-s per GiB (all procs)" "$O_CPU" "$WG_CPU" "$(ratio "$O_CPU" "$WG_CPU")" "iperf3 both ends + both wireguard-go"
printf '%-34s %12s %14s %8s  %s\n' "RR p50 us" "$O_P50" "$WG_P50" "$(ratio "$O_P50" "$WG_P50")" "ping over wireguard-go (target ratio <= 1)"
printf '%-34s %12s %14s %8s  %s\n' "RR p50 us" "$O_P50" "$WG_RR" "$(ratio "$O_P50" "$WG_RR")" "kernel TCP 64 B RR over wireguard-go (.NET sockets)"
printf '%-34s %12s %14s %8s  %s\n' "RR p99 us" "$O_P99" "$WG_RR99" "$(ratio "$O_P99" "$WG_RR99")" "kernel TCP 64 B RR over wireguard-go"
printf '%-34s %12s %14s %8s  %s\n' "RR cpu-us per round trip" "$O_RR_CPU" "$WG_RR_CPU_US" "$(ratio "$O_RR_CPU" "$WG_RR_CPU_US")" "both .NET ends + both wireguard-go"
printf '%-34s %12s %14s %8s  %s\n' "alloc B/packet, stream (cli/srv)" "$O_ALLOC_C/$O_ALLOC_S" "-" "-" "target 0"
printf '%-34s %12s %14s %8s  %s\n' "alloc B/packet, RR (mean of ends)" "$O_RR_ALLOC" "-" "-" "target 0"
echo "ceiling and context:"
printf '  %-32s %8s Gbit/s  %6s cpu-s/GiB  ping p50 %6s us  TCP RR p50 %6s us\n' "loopback 127.0.0.1 (kernel)" "$LO_GBPS" "$LO_CPU" "$LO_P50" "$LO_RR"
printf '  %-32s %8s Gbit/s  %6s cpu-s/GiB  ping p50 %6s us\n' "bare veth (kernel, no tunnel)" "$VE_GBPS" "$VE_CPU" "$VE_P50"
printf '  %-32s %8s Gbit/s  %6s cpu-s/GiB  ping p50 %6s us  p99 %s us; retransmits %s\n' "wireguard-go (kernel TCP)" "$WG_GBPS" "$WG_CPU" "$WG_P50" "$WG_P99" "$WG_RETR"
jq -cn --argjson ours "$OURS" \
  --arg lo_gbps "$LO_GBPS" --arg lo_ping "$LO_P50" --arg lo_rr "$LO_RR" \
  --arg ve_gbps "$VE_GBPS" --arg ve_ping "$VE_P50" \
  --arg wg_gbps "$WG_GBPS" --arg wg_cpu "$WG_CPU" --arg wg_ping "$WG_P50" --arg wg_ping99 "$WG_P99" --arg wg_rr "$WG_RR" --arg wg_rr99 "$WG_RR99" --arg wg_rr_cpu "$WG_RR_CPU_US" \
  '{compare: "tunnelmesh-e2e", ours: $ours,
    reference: {loopback: {gbit_s: ($lo_gbps|tonumber?), ping_p50_us: ($lo_ping|tonumber?), tcp_rr_p50_us: ($lo_rr|tonumber?)},
                veth: {gbit_s: ($ve_gbps|tonumber?), ping_p50_us: ($ve_ping|tonumber?)},
                wireguard_go: {gbit_s: ($wg_gbps|tonumber?), cpu_s_per_gib: ($wg_cpu|tonumber?), ping_p50_us: ($wg_ping|tonumber?), ping_p99_us: ($wg_ping99|tonumber?),
                               tcp_rr_p50_us: ($wg_rr|tonumber?), tcp_rr_p99_us: ($wg_rr99|tonumber?), tcp_rr_cpu_us_per_rt: ($wg_rr_cpu|tonumber?)}}}'
log "done in $(( $(date +%s) - T0 ))s"
