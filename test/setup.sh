#!/usr/bin/env bash
# What the tests need besides node_modules, installed or built once and reused after that
# (`npm test` runs this first; so does CI, through `npm test`):
#   - Debian packages redis-server, postgresql, prometheus (+ promtool), tini: installed with
#     apt-get when run as root, otherwise listed with the exact command to run;
#   - for the node tier (test/node/, a real one-node cluster): runc, containernetworking-plugins,
#     iptables, conntrack, socat, buildah and mmdebstrap;
#   - the e2e control plane (etcd, kube-apiserver, kubectl, helm) and the node binaries (kubelet,
#     kube-scheduler, kube-controller-manager, kube-proxy, containerd, CoreDNS), built from Go
#     modules by `test/cluster/build.sh node` and cached by version (~20 min the first time, then
#     instant; Go >= 1.26). The node tier's images are built when it starts (test/node/images.sh).
# Where it looks: PATH, and Debian's /usr/lib/postgresql/*/bin for PostgreSQL's server binaries
# (KUBERELAY_PG_LIBDIR changes that place; test/e2e/test-setup.test.ts uses it to hide them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pg_libdir="${KUBERELAY_PG_LIBDIR:-/usr/lib/postgresql}"

have_postgres() {
  command -v initdb >/dev/null && return
  compgen -G "$pg_libdir/*/bin/initdb" >/dev/null
}

# missing_packages: the Debian packages whose programs are not found.
missing_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  have_postgres || missing+=(postgresql)
  { command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
  command -v tini >/dev/null || missing+=(tini)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
    missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v socat >/dev/null || missing+=(socat)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  echo "${missing[@]}"
}

read -r -a missing <<<"$(missing_packages)"
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "test setup: redis-server, postgresql, prometheus, tini found (reused); node tier: runc, CNI plugins, iptables, conntrack, socat, buildah, mmdebstrap found (reused)"
elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "test setup: installing ${missing[*]} (apt-get)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  read -r -a still <<<"$(missing_packages)"
  if [[ ${#still[@]} -gt 0 ]]; then
    echo "test setup: installed, but still not found: ${still[*]}" >&2
    exit 1
  fi
else
  {
    echo "test setup: the tests need these Debian packages, which are not installed: ${missing[*]}"
    echo "install them (as root) and run the tests again:"
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
  } >&2
  exit 1
fi

# The control plane and node binaries: reused when every one is cached, built otherwise (needs Go).
cached=1
while IFS='=' read -r _ path; do [[ -x "$path" ]] || cached=0; done < <(test/cluster/bin-paths.sh)
source test/cluster/versions.sh
node_bin="${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}/bin"
for b in kubelet kube-scheduler kube-controller-manager kube-proxy; do
  [[ -x "$node_bin/$b-$KUBERNETES_VERSION" ]] || cached=0
done
[[ -x "$node_bin/containerd-$CONTAINERD_VERSION/containerd" && -x "$node_bin/coredns-$COREDNS_VERSION" ]] || cached=0
if [[ $cached -eq 1 ]]; then
  echo "test setup: e2e control plane (etcd, kube-apiserver, kubectl, helm) cached (reused); node binaries (kubelet, kube-scheduler, kube-controller-manager, kube-proxy, containerd, coredns) cached (reused)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "test setup: the e2e control plane is built from Go modules and needs Go >= 1.26, which is not on PATH: install it (https://go.dev/dl/) and run the tests again" >&2
  exit 1
fi
echo "test setup: building the e2e control plane and node binaries (test/cluster/build.sh node; ~20 min on 2 cores, once: cached by version)"
test/cluster/build.sh node
