#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine (as root): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd + runc, kubelet, kube-proxy (iptables),
# the bridge CNI and CoreDNS. Binaries from test/cluster/build.sh node, images from
# test/node/images.sh. Everything it creates is listed in DIR and removed by `down`, including
# what the kubelet and CNI write outside it (README, Tests: "The node tier").
#   cluster.sh up DIR     starts it; writes DIR/admin.kubeconfig and DIR/env (KEY=value lines)
#   cluster.sh down DIR   stops every process, restores sysctls, removes mounts, the bridge,
#                         veths, netns, iptables chains, cgroups, and DIR itself
# Only one node cluster runs on a machine at a time: `up` waits for /run/lock/kuberelay-node.lock,
# which a watchdog holds until `down` (or until the process OWNER_PID, default the caller, dies:
# then the watchdog runs `down` itself).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/test/cluster/versions.sh"
cache="${KUBERELAY_CACHE:-$HOME/.cache/kuberelay}"
bin="$cache/bin"
lock=/run/lock/kuberelay-node.lock
node_name=kuberelay-node
pod_cidr=10.244.0.0/24
svc_cidr=10.96.0.0/16
dns_ip=10.96.0.10
bridge=krelay0
# Written by the kubelet (kernel.*, vm.*), the bridge plugin (ip_forward) and us (bridge-nf).
sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables)

log() { printf '[node %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'
}

# start NAME BIN ARGS...: a daemon in the background, its output in DIR/logs/NAME.log, its pid in
# DIR/pids/NAME; fd 9 (the lock) is not inherited.
start() {
  local name=$1
  shift
  setsid "$@" >"$dir/logs/$name.log" 2>&1 9>&- </dev/null &
  echo $! >"$dir/pids/$name"
}

wait_for() { # WHAT SECONDS COMMAND...
  local what=$1 until=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    for p in "$dir"/pids/*; do
      kill -0 "$(cat "$p")" 2>/dev/null || { tail -30 "$dir/logs/$(basename "$p").log" >&2; die "$(basename "$p") exited while waiting for $what"; }
    done
    ((SECONDS < until)) || die "timed out waiting for $what"
    sleep 0.5
  done
}

cert() { # NAME CN O SANS  (signed by the cluster CA)
  local name=$1 cn=$2 o=$3 sans=$4 pki=$dir/pki
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key" 2>/dev/null
  {
    printf '[req]\nprompt=no\ndistinguished_name=dn\n[dn]\nCN=%s\n' "$cn"
    [[ -n $o ]] && printf 'O=%s\n' "$o"
    printf '[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n'
    [[ -n $sans ]] && printf 'subjectAltName=%s\n' "$sans"
  } >"$pki/$name.cnf"
  openssl req -new -config "$pki/$name.cnf" -key "$pki/$name.key" -out "$pki/$name.csr"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -days 7 \
    -extfile "$pki/$name.cnf" -extensions ext -out "$pki/$name.crt" 2>/dev/null
}

kubeconfig() { # NAME SERVER  -> DIR/NAME.kubeconfig with the client cert NAME
  local b64='base64 -w0'
  cat >"$dir/$1.kubeconfig" <<KC
{"apiVersion":"v1","kind":"Config","current-context":"kuberelay-node",
 "clusters":[{"name":"kuberelay-node","cluster":{"server":"$2","certificate-authority-data":"$($b64 <"$dir/pki/ca.crt")"}}],
 "users":[{"name":"u","user":{"client-certificate-data":"$($b64 <"$dir/pki/$1.crt")","client-key-data":"$($b64 <"$dir/pki/$1.key")"}}],
 "contexts":[{"name":"kuberelay-node","context":{"cluster":"kuberelay-node","user":"u","namespace":"default"}}]}
KC
  chmod 600 "$dir/$1.kubeconfig"
}

up() {
  [[ $(id -u) -eq 0 ]] || die "the one-node cluster needs root (namespaces, cgroups, iptables)"
  mkdir -p "$dir"/{pki,logs,pids,cni/net.d,cni/ipam,containerd,pod-logs,pv}
  exec 9>"$lock"
  log "waiting for $lock (one node cluster per machine)"
  flock -w 1800 9 || die "another node cluster holds $lock for 30 min"
  # The watchdog holds the lock until down, and runs down if the owner dies first.
  local owner=${OWNER_PID:-$PPID}
  (
    trap '' HUP
    while kill -0 "$owner" 2>/dev/null && [[ -d $dir ]]; do sleep 1; done
    [[ -d $dir ]] && "$here/cluster.sh" down "$dir" >>"/tmp/kuberelay-node-watchdog.log" 2>&1
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/watchdog.pid"
  exec 9>&-
  for s in "${sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$dir/sysctls.saved"
  [[ -d /run/netns ]] || touch "$dir/netns-absent"
  local t0=$SECONDS node_ip
  node_ip=$(ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [[ -n $node_ip ]] || die "no IPv4 address with a default route"
  for b in etcd-"$ETCD_VERSION" kube-apiserver-"$KUBERNETES_VERSION" kube-controller-manager-"$KUBERNETES_VERSION" \
    kube-scheduler-"$KUBERNETES_VERSION" kubelet-"$KUBERNETES_VERSION" kube-proxy-"$KUBERNETES_VERSION" \
    containerd-"$CONTAINERD_VERSION"/containerd kubectl-"$KUBERNETES_VERSION"; do
    [[ -x $bin/$b ]] || die "$bin/$b missing: run test/cluster/build.sh node"
  done
  command -v runc >/dev/null && [[ -x /usr/lib/cni/bridge ]] && command -v iptables >/dev/null && command -v conntrack >/dev/null ||
    die "runc, containernetworking-plugins, iptables and conntrack are needed: bash test/setup.sh installs them"

  # --- PKI -----------------------------------------------------------------------------------
  local pki=$dir/pki
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
    -days 7 -subj /CN=kuberelay-node-ca -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
  cert apiserver kube-apiserver '' "IP:127.0.0.1,IP:$node_ip,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin kuberelay-node-admin system:masters ''
  cert apiserver-kubelet kube-apiserver-kubelet-client system:masters ''
  cert kubelet "system:node:$node_name" system:nodes "IP:$node_ip,DNS:$node_name"
  cert controller-manager system:kube-controller-manager '' ''
  cert scheduler system:kube-scheduler '' ''
  cert proxy system:kube-proxy '' ''
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

  # --- etcd, API server ------------------------------------------------------------------------
  local etcd_port etcd_peer api_port kubelet_port kubelet_hz proxy_metrics proxy_hz
  etcd_port=$(free_port) etcd_peer=$(free_port) api_port=$(free_port) kubelet_port=$(free_port)
  kubelet_hz=$(free_port) proxy_metrics=$(free_port) proxy_hz=$(free_port)
  start etcd "$bin/etcd-$ETCD_VERSION" --name=node --data-dir="$dir/etcd" --unsafe-no-fsync --log-level=warn \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="node=http://127.0.0.1:$etcd_peer"
  local server="https://127.0.0.1:$api_port"
  start kube-apiserver "$bin/kube-apiserver-$KUBERNETES_VERSION" --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=0.0.0.0 --advertise-address="$node_ip" --secure-port="$api_port" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-signing-key-file="$pki/sa.key" --service-account-key-file="$pki/sa.pub" \
    --service-cluster-ip-range="$svc_cidr" --allow-privileged=true --profiling=false \
    --kubelet-client-certificate="$pki/apiserver-kubelet.crt" --kubelet-client-key="$pki/apiserver-kubelet.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname
  for n in admin controller-manager scheduler proxy kubelet; do kubeconfig "$n" "$server"; done
  local kc=("$bin/kubectl-$KUBERNETES_VERSION" --kubeconfig "$dir/admin.kubeconfig")
  wait_for "kube-apiserver /readyz" 120 "${kc[@]}" get --raw /readyz
  log "API server ready at $server ($((SECONDS - t0)) s)"

  start kube-controller-manager "$bin/kube-controller-manager-$KUBERNETES_VERSION" \
    --kubeconfig="$dir/controller-manager.kubeconfig" --leader-elect=false --secure-port=0 \
    --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
    --use-service-account-credentials=true --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key"
  start kube-scheduler "$bin/kube-scheduler-$KUBERNETES_VERSION" --kubeconfig="$dir/scheduler.kubeconfig" \
    --leader-elect=false --secure-port=0

  # --- containerd, CNI ------------------------------------------------------------------------
  cat >"$dir/cni/net.d/10-kuberelay.conflist" <<CNI
{"cniVersion":"1.0.0","name":"kuberelay","plugins":[
 {"type":"bridge","bridge":"$bridge","isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":"$dir/cni/ipam","ranges":[[{"subnet":"$pod_cidr"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"loopback"}]}
CNI
  local ctrd=$dir/containerd
  # Images and container layers in memory: importing is faster, and down unmounts it instead of
  # deleting ~100k files of node_modules layers one by one (~90 s on a busy disk).
  mount -t tmpfs -o size=8g,mode=0700 kuberelay-node-containerd "$ctrd"
  # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj
  # and every sandbox fails without it (see README).
  cat >"$ctrd/config.toml" <<TOML
version = 3
root = "$ctrd/root"
state = "$ctrd/state"
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = "$ctrd/containerd.sock"
[ttrpc]
  address = "$ctrd/containerd.sock.ttrpc"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:3.10.1"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$(command -v runc)"
      SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
  local cbin=$bin/containerd-$CONTAINERD_VERSION
  PATH="$cbin:$PATH" start containerd "$cbin/containerd" --config "$ctrd/config.toml"
  local ctr=("$cbin/ctr" --address "$ctrd/containerd.sock" -n k8s.io)
  wait_for containerd 60 "${ctr[@]}" version
  local ti=$SECONDS
  while IFS='=' read -r k v; do
    case $k in IMAGE_DIR) ;; *) [[ -n $v ]] && printf '%s=%s\n' "$k" "$v" >>"$dir/env" ;; esac
  done < <("$here/images.sh" | grep -E '^[A-Z_]+=')
  for f in "$cache"/images/{pause,coredns,redis,kuberelay}-*.tar; do
    "${ctr[@]}" images import "$f" >>"$dir/logs/ctr-import.log" 2>&1 ||
      { tail -5 "$dir/logs/ctr-import.log" >&2; die "ctr images import $f failed"; }
  done
  log "images imported ($((SECONDS - ti)) s)"

  # --- kubelet, kube-proxy ------------------------------------------------------------------------
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  cat >"$dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
port: $kubelet_port
healthzPort: $kubelet_hz
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
containerRuntimeEndpoint: unix://$ctrd/containerd.sock
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$dns_ip]
podCIDR: $pod_cidr
podLogsDir: $dir/pod-logs
resolvConf: /etc/resolv.conf
# Imported images cannot be pulled again: never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
YAML
  start kubelet "$bin/kubelet-$KUBERNETES_VERSION" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
    --hostname-override="$node_name" --node-ip="$node_ip"
  cat >"$dir/proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/proxy.kubeconfig}
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
metricsBindAddress: 127.0.0.1:$proxy_metrics
healthzBindAddress: 127.0.0.1:$proxy_hz
# Zero: kube-proxy leaves the conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
YAML
  start kube-proxy "$bin/kube-proxy-$KUBERNETES_VERSION" --config="$dir/proxy.yaml"
  wait_for "node Ready" 120 "${kc[@]}" wait --for=condition=Ready "node/$node_name" --timeout=1s
  log "node Ready ($((SECONDS - t0)) s)"

  # --- CoreDNS ----------------------------------------------------------------------------------
  local coredns_image
  coredns_image=$(sed -n 's/^COREDNS_IMAGE=//p' "$dir/env")
  sed -e "s|@IMAGE@|$coredns_image|" -e "s|@DNS_IP@|$dns_ip|" "$here/coredns.yaml" | "${kc[@]}" apply -f - >/dev/null
  wait_for "CoreDNS available" 120 "${kc[@]}" -n kube-system wait --for=condition=Available deploy/coredns --timeout=1s
  {
    echo "KUBECONFIG=$dir/admin.kubeconfig"
    echo "SERVER=$server"
    echo "NODE_IP=$node_ip"
    echo "PV_DIR=$dir/pv"
    echo "LOG_DIR=$dir/logs"
    echo "CTR_ADDRESS=$ctrd/containerd.sock"
    echo "CTR=$bin/containerd-$CONTAINERD_VERSION/ctr"
    echo "STARTUP_SECONDS=$((SECONDS - t0))"
  } >>"$dir/env"
  log "cluster ready in $((SECONDS - t0)) s (CoreDNS available); kubeconfig $dir/admin.kubeconfig"
}

# Kills every process of a pod (their cgroups), the shims and the daemons, then removes what
# they left behind. Safe to run twice, and on a half-started cluster.
down() {
  [[ -d $dir ]] || { log "$dir: not a cluster dir (already down?)"; return 0; }
  local t0=$SECONDS
  # kubelet first, so it restarts nothing; kube-proxy's rules are removed by --cleanup below.
  for n in kubelet kube-proxy kube-scheduler kube-controller-manager; do stop_daemon "$n"; done
  # Pod processes: everything in the kubelet's cgroups, then the shims of our containerd.
  local pids
  for _ in 1 2 3; do
    pids=$( (cat /sys/fs/cgroup/*/kubepods*/cgroup.procs /sys/fs/cgroup/*/kubepods*/*/cgroup.procs \
      /sys/fs/cgroup/*/kubepods*/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods*/*/*/*/cgroup.procs 2>/dev/null;
      pgrep -f "containerd-shim-runc-v2 .*-address $dir/containerd/containerd.sock" ) | sort -u || true)
    [[ -z $pids ]] && break
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  done
  for n in containerd kube-apiserver etcd; do stop_daemon "$n"; done
  log "down: processes stopped ($((SECONDS - t0)) s)"
  [[ -x $bin/kube-proxy-$KUBERNETES_VERSION ]] && timeout 60 "$bin/kube-proxy-$KUBERNETES_VERSION" --cleanup >/dev/null 2>&1 || true
  drop_kube_chains
  # CNI: the bridge plugin's chains, the bridge, veths, sandbox netns, IPAM state.
  drop_cni_chains
  for l in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 || true); do ip link del "$l" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
  for ns in /run/netns/cni-*; do [[ -e $ns ]] && { umount "$ns" 2>/dev/null; rm -f "$ns"; }; done
  [[ -f $dir/netns-absent ]] && rmdir /run/netns 2>/dev/null || true
  # The loopback plugin's results are named by sandbox id, not by network.
  local sb
  for sb in "$dir"/containerd/state/io.containerd.grpc.v1.cri/sandboxes/*; do
    [[ -e $sb ]] && rm -f "/var/lib/cni/results/cni-loopback-$(basename "$sb")-lo"
  done
  rm -rf /var/lib/cni/networks/kuberelay /var/lib/cni/results/kuberelay-* 2>/dev/null || true
  rmdir /var/lib/cni/networks /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  # Mounts under the kubelet's and containerd's dirs (volumes, rootfs, shm), deepest first.
  local m
  for _ in 1 2 3; do
    for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^(/var/lib/kubelet|/run/containerd|$dir)(/|$)" | sort -r || true); do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  rm -rf /var/lib/kubelet /run/containerd /var/log/containers /var/log/pods 2>/dev/null || true
  log "down: network and mounts cleaned ($((SECONDS - t0)) s)"
  # The kubelet's cgroups, deepest first (they are empty now).
  find /sys/fs/cgroup/*/kubepods* -depth -type d -exec rmdir {} + 2>/dev/null || true
  # Sysctls as they were before up.
  if [[ -f $dir/sysctls.saved ]]; then
    while IFS='=' read -r k v; do sysctl -qw "$k=$v" 2>/dev/null || true; done <"$dir/sysctls.saved"
  fi
  log "down: cgroups removed, sysctls restored ($((SECONDS - t0)) s)"
  local wd
  wd=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
  rm -rf "$dir" 2>/dev/null || { sleep 1; rm -rf "$dir"; }
  # The watchdog holds the lock; it is done once the dir is gone (it may be the caller itself).
  [[ -n $wd && $wd != "$$" && $wd != "$PPID" ]] && kill "$wd" 2>/dev/null || true
  log "down in $((SECONDS - t0)) s"
}

# drop_kube_chains: what kube-proxy --cleanup leaves, the kubelet's KUBE-FIREWALL, KUBE-KUBELET-CANARY
# and KUBE-IPTABLES-HINT (IPv4 and IPv6). Only one node cluster runs at a time, so every KUBE-
# chain is ours.
drop_kube_chains() {
  local ipt t rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      "$ipt" -t "$t" -S 2>/dev/null | grep -E -- '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A /-D /' | while read -r rule; do
        eval "$ipt -t $t $rule" 2>/dev/null || true
      done || true
      for chain in $("$ipt" -t "$t" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
        "$ipt" -t "$t" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$t" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
        "$ipt" -t "$t" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# drop_cni_chains: the bridge plugin's per-sandbox masquerade chains of this network (their rules
# carry the comment name: "kuberelay"), with the POSTROUTING rules that jump to them. Other CNI
# users' chains (e.g. buildah's podman network) are left alone.
drop_cni_chains() {
  local rule chain chains
  chains=$(iptables -t nat -S 2>/dev/null | grep -F 'name: \"kuberelay\"' | sed -n 's/^-A \(CNI-[^ ]*\) .*/\1/p' | sort -u || true)
  for chain in $chains; do
    iptables -t nat -S POSTROUTING | grep -- "-j $chain\$" | sed 's/^-A /-D /' | while read -r rule; do
      eval "iptables -t nat $rule" 2>/dev/null || true
    done || true
    iptables -t nat -F "$chain" 2>/dev/null || true
    iptables -t nat -X "$chain" 2>/dev/null || true
  done
}

stop_daemon() {
  local f=$dir/pids/$1 pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

cmd=${1:-}
dir=${2:-}
[[ -n $dir ]] || { echo "usage: cluster.sh up|down DIR" >&2; exit 2; }
dir=$(realpath -m "$dir")
case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: cluster.sh up|down DIR" >&2; exit 2 ;;
esac
