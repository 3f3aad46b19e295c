#!/usr/bin/env bash
# test/setup.sh on a machine without the Debian packages, twice, without a container engine: a
# private mount namespace with an overlay of this machine's root, in which the packages are
# purged (the real machine is not touched; the overlay is thrown away at the end). Run 1 must
# install them with apt-get, run 2 must reuse them. Needs root; takes a few minutes (downloads).
# Services are not started inside (policy-rc.d), so no server gets the host's ports.
#   Usage: sudo test/fresh-root.sh
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "fresh-root.sh: needs root (a mount namespace and an overlay)" >&2; exit 1; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kuberelay-fresh-root.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/work" "$work/root"

unshare -m --propagation private bash -euo pipefail -c '
  work=$1 repo=$2 root=$1/root
  mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  printf "#!/bin/sh\nexit 101\n" >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
  pkgs=$(chroot "$root" dpkg-query -W -f="\${db:Status-Abbrev} \${Package}\n" redis-server redis-tools prometheus tini "postgresql*" 2>/dev/null | awk "\$1 == \"ii\" { print \$2 }")
  chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends $pkgs >/dev/null 2>&1
  echo "== purged in the overlay:" $pkgs
  echo "== left of them: $(chroot "$root" bash -c "command -v redis-server prometheus promtool tini; ls /usr/lib/postgresql 2>/dev/null" | wc -l) programs"
  for run in 1 2; do
    echo "== test/setup.sh, run $run"
    start=$SECONDS
    chroot "$root" bash -c "cd \"$repo\" && bash test/setup.sh" 2>&1 | grep -v "^\(Get\|Selecting\|Preparing\|Unpacking\|Setting up\|Processing\|Reading\|Building\|Hit\|Ign\)"
    echo "== run $run: $((SECONDS - start)) s"
  done
' fresh-root "$work" "$repo"
