#!/usr/bin/env bash
# kustomize, pinned: builds sigs.k8s.io/kustomize/kustomize/v5 at $VERSION
# with the machine's Go (from the Go module proxy) into the cache directory
# once, then runs it with the arguments given:
#   scripts/kustomize.sh build deploy/kubernetes/overlays/production
# (v5.8.2 builds with Go 1.26; v5.8.3 needs a newer Go.)
# `kubectl apply -k` and `kubectl kustomize` embed a kustomize of their own;
# this one is for the tests (tests/deploy) and for looking at the output.
set -euo pipefail

VERSION=v5.8.2
cache=${RS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/refstream}
bin=$cache/kustomize-$VERSION/kustomize
if [[ ! -x $bin ]]; then
        go=$(command -v go || true)
        [[ -n $go || ! -x /usr/local/go/bin/go ]] || go=/usr/local/go/bin/go
        [[ -n $go ]] || {
                echo "kustomize.sh: go not found (Go 1.22 or later is needed to build kustomize)" >&2
                exit 1
        }
        mkdir -p "$cache"
        (
                flock -w 900 9 || { echo "kustomize.sh: timed out waiting for the lock" >&2; exit 1; }
                if [[ ! -x $bin ]]; then
                        echo "kustomize.sh: building kustomize $VERSION into $cache (once)" >&2
                        GOBIN=$cache/kustomize-$VERSION.tmp GOFLAGS=-mod=mod \
                                "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION"
                        rm -rf "$cache/kustomize-$VERSION"
                        mv "$cache/kustomize-$VERSION.tmp" "$cache/kustomize-$VERSION"
                fi
        ) 9>"$cache/.kustomize.lock"
fi
exec "$bin" "$@"
