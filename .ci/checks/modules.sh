#!/usr/bin/env bash
# Every module installs for a user outside this repository. The check lays
# out this checkout as a file-based module proxy in which the root module
# and every nested module are published at one version (what the release
# tags of RELEASING.md produce), then builds and tests a consumer
# module in a temporary directory, with no go.work and no replace, that
# imports the root packages and every nested module. Public dependencies
# come through the usual proxy (read from `go env GOPROXY`).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

version=v0.2.0 # the version every nested go.mod requires; see RELEASING.md
dev_modules=github.com/garrison-go/garrison/bench # never released

cache=$(go env GOMODCACHE)
# forget_published removes what an earlier run extracted for this
# repository's modules at $version: module versions are immutable in the
# cache, so a stale copy would hide this checkout. Everything else stays,
# so a warm machine needs no network.
forget_published() {
  local d
  for d in "$cache/github.com/garrison-go" "$cache/cache/download/github.com/garrison-go"; do
    if [[ -d $d ]]; then
      chmod -R u+w "$d"
      rm -rf "$d"
    fi
  done
}

work=$(mktemp -d)
cleanup() {
  forget_published
  rm -rf "$work"
}
trap cleanup EXIT
forget_published

upstream=$(go env GOPROXY)

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

export GOPROXY="file://$work/proxy,$upstream"
export GONOSUMDB='github.com/garrison-go/*'
# -trimpath and -race as in contrib.sh, so the dependencies it compiled
# are reused from the build cache.
export GOFLAGS='-mod=mod -trimpath'
export GOWORK=off
# The go command indexes module-cache directories once per module version,
# assuming their content never changes; this check republishes the same
# version from a changed checkout, so the index must not be used.
export GODEBUG="${GODEBUG:+$GODEBUG,}goindex=0"
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
