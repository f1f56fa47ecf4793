//go:build tools

// Package cluster pins the Kubernetes control plane that mlsched's end-to-end tests run against, and
// kube-scheduler, the peer to compare with. Nothing here is mlsched: this file only names the published
// commands so that go.mod and go.sum record one consistent set of versions. The Rust harness
// (tests/src/real/binaries.rs) builds them with `go build`.
package cluster

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
