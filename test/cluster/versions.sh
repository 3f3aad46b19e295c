# Pinned versions of the test control plane (sourced by build.sh and bin-paths.sh).
# kube-apiserver and kubectl come from one Kubernetes release; its staging modules are
# published as v0.<minor>.<patch>, which build.sh derives from KUBERNETES_VERSION. etcd 3.7 is
# the line Kubernetes 1.37 itself pins (build/dependencies.yaml).
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
HELM_VERSION=v4.3.1
# The one-node cluster (test/node/): kubelet, kube-scheduler, kube-controller-manager and
# kube-proxy come from KUBERNETES_VERSION; containerd 2.x (kubelet 1.37 only falls back for 1.x)
# and CoreDNS are their own modules.
CONTAINERD_VERSION=v2.4.2
COREDNS_VERSION=v1.15.0
