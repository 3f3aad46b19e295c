#!/usr/bin/env bash
# Builds an OpenTelemetry Collector from Go modules with the official builder (ocb): the OTLP
# receiver and the debug exporter (span attributes printed in full), the smallest collector that
# shows what the relay exports. Cached in ~/.cache/kuberelay/bin by version; prints its path.
set -euo pipefail
VERSION=${OTELCOL_VERSION:-0.165.0}
CACHE=${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}
BIN="$CACHE/bin/otelcol-kuberelay-v$VERSION"
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export GOFLAGS=-buildvcs=false GOBIN="$WORK/bin"
go install "go.opentelemetry.io/collector/cmd/builder@v$VERSION" >&2
cat >"$WORK/builder.yaml" <<YAML
dist:
  name: otelcol-kuberelay
  output_path: $WORK/dist
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$VERSION
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter v$VERSION
YAML
"$WORK/bin/builder" --config "$WORK/builder.yaml" >&2
mkdir -p "$CACHE/bin"
mv "$WORK/dist/otelcol-kuberelay" "$BIN"
echo "$BIN"
