#!/usr/bin/env bash
# Every module installs for a user outside this repository. The check lays
# out this checkout as a file-based module proxy in which the root module
# and every nested module are published at one version (what the release
# tags of RELEASING.md produce), then builds and tests a consumer
# module in a temporary directory, with no go.work and no replace, that
# imports the root packages and every nested module. Public dependencies
# come through the usual proxy (read from `go env GOPROXY`), after the local
# module cache so that a warm machine needs no network.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

version=v0.2.0 # the version every nested go.mod requires; see RELEASING.md
dev_modules=github.com/garrison-go/garrison/bench # never released

work=$(mktemp -d)
cleanup() {
  # The module cache is read-only unless -modcacherw; make sure it goes.
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

upstream=$(go env GOPROXY)
cache=$(go env GOMODCACHE)

echo "publishing every module at $version"
(cd .ci/modules && GOWORK=off GOFLAGS=-mod=mod go run . -repo "$repo" -version "$version" \
  -out "$work/proxy" -dev "$dev_modules") | tee "$work/modules"

# The consumer's go.mod requires every published module at $version.
mkdir -p "$work/consumer"
cp .ci/modules/testdata/consumer/*.go "$work/consumer/"
{
  printf 'module example.com/consumer\n\ngo 1.25.0\n\nrequire (\n'
  while read -r m; do printf '\t%s %s\n' "$m" "$version"; done <"$work/modules"
  printf ')\n'
} >"$work/consumer/go.mod"

# A fresh module cache: one left by an earlier run may hold a different
# build of the same version, and module versions are immutable there.
export GOMODCACHE="$work/modcache"
export GOPROXY="file://$work/proxy,file://$cache/cache/download,$upstream"
export GONOSUMDB='github.com/garrison-go/*'
# -trimpath keys the build cache on module@version rather than on the
# module cache's path, so this fresh cache still reuses what contrib.sh
# compiled (with -race, as below).
export GOFLAGS='-mod=mod -modcacherw -trimpath'
export GOWORK=off
(
  cd "$work/consumer"
  go mod tidy
  # Every published module must be a requirement, not only the ones the
  # test happens to import.
  while read -r m; do
    if ! go list -m "$m" >/dev/null; then
      echo "consumer does not import $m" >&2
      exit 1
    fi
  done <"$work/modules"
  go test -race -count=1 ./...
)
echo "modules: every module installs from a proxy at $version"
