#!/usr/bin/env bash
# Builds the binaries of the e2e control plane (etcd, kube-apiserver, kubectl, helm) from
# published Go modules and caches them by version outside the repo, in
# ${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}/bin/<name>-<version>. A cached binary is never
# rebuilt, so a second run only checks the cache. Pinned versions live in versions.sh.
#
# Usage: test/cluster/build.sh [COMPONENT ...]   (default: etcd kube-apiserver kubectl helm)
#        test/cluster/build.sh node                (adds what the one-node cluster needs:
#        kubelet kube-scheduler kube-controller-manager kube-proxy containerd coredns)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"

cache="${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}"
bin="$cache/bin"
mkdir -p "$bin"

command -v go >/dev/null || { echo "build.sh: Go (>= 1.26) is required on PATH" >&2; exit 1; }

# Two concurrent runs (e.g. two terminals) would otherwise compile the same thing twice.
if command -v flock >/dev/null; then
  exec 9>"$cache/build.lock"
  flock 9
fi

# Static, stripped binaries: no C toolchain needed, smaller and faster to link.
export CGO_ENABLED=0
ldflags_base='-s -w'

work=$(mktemp -d "${TMPDIR:-/tmp}/kuberelay-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# build_cached NAME VERSION FUNCTION VERSION-ARGS...: runs FUNCTION OUT (which must write the
# binary to OUT) unless bin/NAME-VERSION exists; the binary is moved into place only once it is
# complete and answers VERSION-ARGS.
build_cached() {
  local name=$1 version=$2 fn=$3
  shift 3
  local target="$bin/$name-$version"
  if [[ -e "$target" ]]; then
    printf '%-15s %-9s cached  %s\n' "$name" "$version" "$target"
    return
  fi
  printf '%-15s %-9s building ...\n' "$name" "$version"
  local start=$SECONDS tmp="$work/$name.out"
  "$fn" "$tmp"
  local probe=$tmp
  [[ -d "$tmp" ]] && probe="$tmp/$name" # a directory of binaries answers through its namesake
  "$probe" "$@" >/dev/null || {
    echo "build.sh: $name $version was built but '$name $*' fails" >&2
    exit 1
  }
  rm -rf "$target"
  mv -f "$tmp" "$target"
  printf '%-15s %-9s built in %ds  %s\n' "$name" "$version" $((SECONDS - start)) "$target"
}

# Kubernetes' own go.mod replaces its staging modules (k8s.io/api, client-go, ...) with
# ./staging/src paths and requires them at v0.0.0, so `go install k8s.io/kubernetes/...@v` is
# refused. A throwaway main module requires k8s.io/kubernetes and replaces each staging module
# with its published v0.<minor>.<patch> release instead.
k8s_module() {
  local dir="$work/k8s"
  [[ -f "$dir/go.mod" ]] && return
  mkdir -p "$dir"
  local staging_version="v0.${KUBERNETES_VERSION#v1.}" gomod
  gomod=$(cd "$dir" && go list -m -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f "$gomod" ]] || { echo "build.sh: cannot read go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION" >&2; exit 1; }
  {
    echo 'module kuberelay.test/k8sbuild'
    echo 'go 1.26.0'
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    # Only staging modules kubernetes requires (at v0.0.0): some sample-* ones are not published.
    grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/' "$gomod" | awk '{print $1}' | sort -u |
      while read -r m; do
        if grep -qE "^[[:space:]]*(require[[:space:]]+)?$m v0\.0\.0([[:space:]]|$)" "$gomod"; then
          echo "replace $m => $m $staging_version"
        fi
      done
  } >"$dir/go.mod"
}

k8s_ldflags() {
  local v=$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local flags="$ldflags_base" pkg
  # What hack/lib/version.sh stamps; without it /version says v0.0.0-master and helm's
  # kubeVersion checks and kubectl's skew warnings misbehave.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_k8s_cmd() {
  local out=$1 cmd=$2
  k8s_module
  (cd "$work/k8s" && go build -mod=mod -trimpath -ldflags "$(k8s_ldflags)" -o "$out" "k8s.io/kubernetes/cmd/$cmd")
}
build_kube_apiserver() { build_k8s_cmd "$1" kube-apiserver; }
build_kubectl() { build_k8s_cmd "$1" kubectl; }
build_kubelet() { build_k8s_cmd "$1" kubelet; }
build_kube_scheduler() { build_k8s_cmd "$1" kube-scheduler; }
build_kube_controller_manager() { build_k8s_cmd "$1" kube-controller-manager; }
build_kube_proxy() { build_k8s_cmd "$1" kube-proxy; }

# containerd's daemon, its runc shim and ctr (for `ctr images import`) share one version; the
# storage drivers that need C libraries are left out. They are cached as one directory.
build_containerd() {
  local out=$1 tags='no_btrfs no_devmapper no_zfs' mod=github.com/containerd/containerd/v2
  local v=${CONTAINERD_VERSION#v}
  mkdir -p "$out"
  GOBIN="$out" go install -trimpath -tags "$tags" \
    -ldflags "$ldflags_base -X $mod/version.Version=$v -X $mod/version.Revision=$CONTAINERD_VERSION" \
    "$mod/cmd/containerd@$CONTAINERD_VERSION" "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$mod/cmd/ctr@$CONTAINERD_VERSION"
}

build_coredns() {
  local out=$1
  GOBIN="$work/coredns-bin" go install -trimpath -ldflags "$ldflags_base" \
    "github.com/coredns/coredns@$COREDNS_VERSION"
  mv "$work/coredns-bin/coredns" "$out"
}

# etcd's server/v3 go.mod replaces its sibling modules with ../ paths, so it needs the same
# wrapper-module trick; its main package is the module root.
build_etcd() {
  local out=$1 dir="$work/etcd"
  mkdir -p "$dir"
  printf 'module kuberelay.test/etcdbuild\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$dir/go.mod"
  (cd "$dir" && go build -mod=mod -trimpath -ldflags "$ldflags_base" -o "$out" go.etcd.io/etcd/server/v3)
}

build_helm() {
  local out=$1 major=${HELM_VERSION%%.*}
  GOBIN="$work/helm-bin" go install -trimpath \
    -ldflags "$ldflags_base -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  mv "$work/helm-bin/helm" "$out"
}

components=()
for c in "${@:-control-plane}"; do
  case $c in
    control-plane) components+=(etcd kube-apiserver kubectl helm) ;;
    node) components+=(etcd kube-apiserver kubectl helm kubelet kube-scheduler kube-controller-manager kube-proxy containerd coredns) ;;
    *) components+=("$c") ;;
  esac
done
for c in "${components[@]}"; do
  case $c in
    etcd) build_cached etcd "$ETCD_VERSION" build_etcd --version ;;
    kube-apiserver) build_cached kube-apiserver "$KUBERNETES_VERSION" build_kube_apiserver --version ;;
    kubectl) build_cached kubectl "$KUBERNETES_VERSION" build_kubectl version --client ;;
    helm) build_cached helm "$HELM_VERSION" build_helm version ;;
    kubelet) build_cached kubelet "$KUBERNETES_VERSION" build_kubelet --version ;;
    kube-scheduler) build_cached kube-scheduler "$KUBERNETES_VERSION" build_kube_scheduler --version ;;
    kube-controller-manager) build_cached kube-controller-manager "$KUBERNETES_VERSION" build_kube_controller_manager --version ;;
    kube-proxy) build_cached kube-proxy "$KUBERNETES_VERSION" build_kube_proxy --version ;;
    containerd) build_cached containerd "$CONTAINERD_VERSION" build_containerd --version ;;
    coredns) build_cached coredns "$COREDNS_VERSION" build_coredns -version ;;
    *) echo "build.sh: unknown component '$c' (control-plane, node, or one of etcd kube-apiserver kubectl helm kubelet kube-scheduler kube-controller-manager kube-proxy containerd coredns)" >&2; exit 2 ;;
  esac
done

"$here/bin-paths.sh"
