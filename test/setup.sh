#!/usr/bin/env bash
# What the tests need besides node_modules, installed or built once and reused after that
# (`npm test` runs this first; so does CI, through `npm test`):
#   - Debian packages redis-server, postgresql, prometheus (+ promtool), tini: installed with
#     apt-get when run as root, otherwise listed with the exact command to run;
#   - the e2e control plane (etcd, kube-apiserver, kubectl, helm), built from Go modules by
#     test/cluster/build.sh and cached by version (~12 min the first time, then instant; Go >= 1.26).
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
  echo "${missing[@]}"
}

read -r -a missing <<<"$(missing_packages)"
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "test setup: redis-server, postgresql, prometheus, tini found (reused)"
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

# The control plane: reused when every binary is cached, built otherwise (that needs Go).
cached=1
while IFS='=' read -r _ path; do [[ -x "$path" ]] || cached=0; done < <(test/cluster/bin-paths.sh)
if [[ $cached -eq 1 ]]; then
  echo "test setup: e2e control plane (etcd, kube-apiserver, kubectl, helm) cached (reused)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "test setup: the e2e control plane is built from Go modules and needs Go >= 1.26, which is not on PATH: install it (https://go.dev/dl/) and run the tests again" >&2
  exit 1
fi
echo "test setup: building the e2e control plane (test/cluster/build.sh; ~12 min on 2 cores, once: cached by version)"
test/cluster/build.sh
