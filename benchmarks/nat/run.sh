#!/usr/bin/env bash
# NAT traversal figures (docs/BENCHMARKS.md, "NAT traversal"): builds the server test project and runs
# NatBenchmark in the NAT lab (tests/TunnelMesh.Net.Server.Tests/Nat). Needs root, iproute2, nftables, conntrack.
#   benchmarks/nat/run.sh [RUNS] [MIB]     defaults: 20 runs to a direct path, 256 MiB per transfer
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=$(mktemp)
log=$(mktemp)
dotnet build tests/TunnelMesh.Net.Server.Tests -c Release -v q -nologo >"$log" 2>&1 || { cat "$log"; echo "the build failed"; exit 1; }
TM_NAT_BENCH=1 TM_NAT_BENCH_RUNS="${1:-20}" TM_NAT_BENCH_MIB="${2:-256}" TM_NAT_BENCH_OUT="$out" \
  dotnet test tests/TunnelMesh.Net.Server.Tests -c Release --no-build --filter "FullyQualifiedName~NatBenchmark" \
  --logger "console;verbosity=detailed" >"$log" 2>&1 \
  || { tail -n 80 "$log"; echo "the benchmark failed (whole log: $log)"; exit 1; }
[ -s "$out" ] || { tail -n 40 "$log"; echo "no figures written (skipped?)"; exit 1; }
cat "$out"
rm -f "$out" "$log"
