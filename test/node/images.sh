#!/usr/bin/env bash
# Builds the images the one-node cluster runs, without a Docker daemon or a registry, as
# docker-archive tarballs in ${KUBERELAY_CACHE:-~/.cache/kuberelay}/images (cluster.sh imports
# them into containerd with `ctr images import`):
#   node      the Dockerfile's base (node:24-bookworm-slim's role): a Debian bookworm rootfs from
#             mmdebstrap + the `node` npm package's binary (node_modules) + npm from the registry
#   kuberelay the repository's Dockerfile, built by buildah FROM that base (keyed by the hash of
#             the files the Dockerfile copies, so an edit rebuilds it)
#   redis     Debian's redis-server on the same Debian rootfs (the chart's redis.bundled)
#   pause     the pod sandbox (test/node/pause), coredns: the built CoreDNS binary, both single-file
# Prints the image references as NAME=ref lines (last lines of the output).
# Usage: test/node/images.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/test/cluster/versions.sh"
cache="${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}"
out="$cache/images"
mkdir -p "$out"
exec 8>"$cache/images.lock"
flock 8

node_bin="$repo/node_modules/node/bin/node"
node_version=$("$node_bin" --version)
npm_version=${NPM_VERSION:-11.19.1}
# Names the Dockerfile's NODE_IMAGE ARG and the chart's image values are pointed at.
node_ref="kuberelay.test/node:${node_version#v}-bookworm-slim"
pause_ref="registry.k8s.io/pause:3.10.1"
coredns_ref="kuberelay.test/coredns:${COREDNS_VERSION#v}"
redis_ref="kuberelay.test/redis:bookworm"

# buildah keeps its own store here, apart from any system one; overlay on the cache's filesystem.
# Host network for RUN steps: buildah's default CNI network would add a bridge and iptables chains.
bh() { buildah --root "$cache/buildah/root" --runroot "/run/kuberelay-buildah" --storage-driver overlay "$@"; }
timed() { local what=$1 start=$SECONDS; shift; "$@"; printf 'images: %-10s built in %ds\n' "$what" $((SECONDS - start)); }

# save REF FILE: writes the image as a docker-archive (what `ctr images import` reads with its name).
save() { rm -f "$2.tmp"; bh push -q "$1" "docker-archive:$2.tmp:$1" >/dev/null; mv "$2.tmp" "$2"; }

rootfs() {
  local tar="$out/debian-bookworm-rootfs.tar"
  [[ -f $tar ]] && return
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$tar.tmp" http://deb.debian.org/debian
  mv "$tar.tmp" "$tar"
}

build_node() {
  rootfs
  local c npm_tgz
  c=$(bh from scratch)
  bh add -q "$c" "$out/debian-bookworm-rootfs.tar" /
  bh copy -q --chmod 0755 "$c" "$node_bin" /usr/local/bin/node
  npm_tgz=$(cd "$out" && npm pack --silent "npm@$npm_version")
  bh run --network host "$c" -- mkdir -p /usr/local/lib/node_modules/npm /usr/local/etc
  bh copy -q "$c" "$out/$npm_tgz" /tmp/npm.tgz # copy: `add` would unpack it
  bh run --network host "$c" -- sh -c 'tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 && rm /tmp/npm.tgz &&
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx'
  rm -f "$out/$npm_tgz"
  # The build host's own CAs (an egress proxy's, say) are trusted as on the host, so the
  # Dockerfile's `npm ci` and apt-get reach their registries from here just as from the host.
  local ca
  for ca in /usr/local/share/ca-certificates/*.crt; do
    [[ -f $ca ]] && bh copy -q "$c" "$ca" /usr/local/share/ca-certificates/
  done
  bh run --network host "$c" -- sh -c 'update-ca-certificates >/dev/null &&
    echo cafile=/etc/ssl/certs/ca-certificates.crt >/usr/local/etc/npmrc'
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env "NODE_VERSION=${node_version#v}" --cmd node "$c"
  bh commit -q --rm "$c" "$node_ref" >/dev/null
}

build_single() { # REF FILE-ON-HOST PATH-IN-IMAGE ENTRYPOINT...
  local ref=$1 src=$2 dst=$3 c
  shift 3
  c=$(bh from scratch)
  bh copy -q --chmod 0755 "$c" "$src" "$dst"
  bh config --entrypoint "$(printf '%s\n' "$@" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')" "$c"
  bh commit -q --rm "$c" "$ref" >/dev/null
}

build_pause() {
  local dir
  dir=$(mktemp -d)
  (cd "$here/pause" && CGO_ENABLED=0 GOFLAGS=-mod=mod GO111MODULE=off go build -trimpath -ldflags '-s -w' -o "$dir/pause" main.go)
  build_single "$pause_ref" "$dir/pause" /pause /pause
  rm -rf "$dir"
}

build_coredns() { build_single "$coredns_ref" "$cache/bin/coredns-$COREDNS_VERSION" /coredns /coredns; }

build_redis() {
  rootfs
  local c
  c=$(bh from scratch)
  bh add -q "$c" "$out/debian-bookworm-rootfs.tar" /
  bh run --network host "$c" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null && rm -rf /var/lib/apt/lists/*'
  # As the official image: the chart's args start with redis-server, uid 999.
  bh config --user 999:999 --entrypoint '[]' --cmd redis-server "$c"
  bh commit -q --rm "$c" "$redis_ref" >/dev/null
}

# The files the Dockerfile copies, hashed: the image is rebuilt exactly when one of them changes.
project_key() {
  (cd "$repo" && find Dockerfile .dockerignore package.json package-lock.json tsconfig.json prisma.config.ts \
    prisma cli core db kube mock-upstream operator redis relay crds examples -type f \
    -not -path 'db/generated/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
}

build_project() {
  have node "$node_ref" build_node
  # --layers: a source edit reuses the cached `npm ci` layers.
  bh build -q --network host --layers --build-arg "NODE_IMAGE=$node_ref" -t "$project_ref" -f "$repo/Dockerfile" "$repo" >/dev/null
}

# have NAME REF BUILD-FN: builds REF (unless its archive is cached) and saves it as NAME-*.tar.
have() {
  local name=$1 ref=$2 fn=$3 file
  file="$out/$name-$(echo "$ref" | tr '/:' '__').tar"
  if [[ -f $file ]]; then return; fi
  timed "$name" "$fn"
  save "$ref" "$file"
}

project_ref="kuberelay.test/kuberelay:$(project_key)"
# Working containers of an interrupted build would otherwise pile up.
trap 'bh rm --all >/dev/null 2>&1 || true' EXIT
have node "$node_ref" build_node
have pause "$pause_ref" build_pause
have coredns "$coredns_ref" build_coredns
have redis "$redis_ref" build_redis
have kuberelay "$project_ref" build_project
# Older project images are dropped: one per source state is plenty.
find "$out" -name 'kuberelay-*.tar' ! -name "kuberelay-$(echo "$project_ref" | tr '/:' '__').tar" -delete
echo "NODE_IMAGE=$node_ref"
echo "PAUSE_IMAGE=$pause_ref"
echo "COREDNS_IMAGE=$coredns_ref"
echo "REDIS_IMAGE=$redis_ref"
echo "KUBERELAY_IMAGE=$project_ref"
echo "IMAGE_DIR=$out"
