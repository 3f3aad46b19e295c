#!/usr/bin/env bash
# Prints KEY=path lines for the control-plane binaries that build.sh caches (eval-able as
# `eval "$(test/cluster/bin-paths.sh --export)"`). Environment variables of the same name win,
# so a developer can point the tests at binaries built elsewhere.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"
bin="${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}/bin"
prefix=''
if [[ "${1:-}" == --export ]]; then prefix='export '; fi
echo "${prefix}KUBE_APISERVER=${KUBE_APISERVER:-$bin/kube-apiserver-$KUBERNETES_VERSION}"
echo "${prefix}KUBECTL=${KUBECTL:-$bin/kubectl-$KUBERNETES_VERSION}"
echo "${prefix}ETCD=${ETCD:-$bin/etcd-$ETCD_VERSION}"
echo "${prefix}HELM=${HELM:-$bin/helm-$HELM_VERSION}"
