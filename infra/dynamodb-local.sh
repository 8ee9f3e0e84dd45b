#!/usr/bin/env bash
# DynamoDB Local (AWS's DynamoDB emulator) for Sluice's tests and local stack.
#
#   infra/dynamodb-local.sh fetch   put DynamoDBLocal.jar and DynamoDBLocal_lib/
#                                   in $SLUICE_CACHE_DIR/dynamodb-local
#                                   (default <repo>/.cache/dynamodb-local) and
#                                   print that folder; a no-op when present
#
# The jar ships in the npm package amplify-dynamodb-simulator (folder
# package/emulator/ of its tarball), fetched with `npm pack`. This script does
# what dynamolocal.EnsureJar (internal/dynamolocal/fetch.go) does, with the
# same pins, lock file, folder and marker, so either may fill the cache for
# the other; running it before `go test` saves each test binary the wait.
# Running the emulator is the Go package's job (dynamolocal.Start).
set -euo pipefail

# Keep in step with internal/dynamolocal/fetch.go (a Go test checks).
SIMULATOR_PACKAGE=amplify-dynamodb-simulator
SIMULATOR_VERSION=2.9.30
JAR_SHA256=454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7

SPEC="$SIMULATOR_PACKAGE@$SIMULATOR_VERSION"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${SLUICE_CACHE_DIR:-$ROOT/.cache}"
JAR_DIR="$CACHE_DIR/dynamodb-local"

die() { echo "dynamodb-local.sh: $*" >&2; exit 1; }

# jar_dir_ok: the jar and its lib folder are there, and the marker (if any)
# names the pinned package.
jar_dir_ok() {
  [[ -f "$JAR_DIR/DynamoDBLocal.jar" && -d "$JAR_DIR/DynamoDBLocal_lib" ]] || return 1
  [[ ! -e "$JAR_DIR/.source" ]] || [[ "$(tr -d '[:space:]' <"$JAR_DIR/.source")" == "$SPEC" ]]
}

fetch() {
  if jar_dir_ok; then
    echo "$JAR_DIR"
    return
  fi
  command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local (npm package $SPEC)"
  mkdir -p "$CACHE_DIR"
  CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"
  JAR_DIR="$CACHE_DIR/dynamodb-local"
  if command -v flock >/dev/null; then
    exec 9>"$CACHE_DIR/dynamodb-local.lock"
    flock -w 600 9 || die "timed out waiting for $CACHE_DIR/dynamodb-local.lock"
    if jar_dir_ok; then
      echo "$JAR_DIR"
      return
    fi
  fi

  local tmp
  tmp="$(mktemp -d "$CACHE_DIR/.dynamodb-local-tmp-XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  (cd "$tmp" && timeout 300 npm pack "$SPEC" --silent >/dev/null) || die "npm pack $SPEC failed"
  local tarball
  tarball="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
  [[ -n "$tarball" ]] || die "npm pack $SPEC made no tarball"
  mkdir "$tmp/emulator"
  tar -xzf "$tarball" -C "$tmp/emulator" --strip-components=2 package/emulator
  [[ -d "$tmp/emulator/DynamoDBLocal_lib" ]] || die "no package/emulator/DynamoDBLocal_lib in $SPEC"
  local sum
  sum="$(sha256sum "$tmp/emulator/DynamoDBLocal.jar" | cut -d' ' -f1)"
  [[ "$sum" == "$JAR_SHA256" ]] || die "DynamoDBLocal.jar has SHA-256 $sum, want $JAR_SHA256"
  echo "$SPEC" >"$tmp/emulator/.source"

  if [[ -e "$JAR_DIR" ]]; then
    mv "$JAR_DIR" "$tmp/old"
  fi
  if ! mv -T "$tmp/emulator" "$JAR_DIR" 2>/dev/null; then
    jar_dir_ok || die "could not move the emulator into $JAR_DIR"
  fi
  echo "$JAR_DIR"
}

case "${1:-}" in
  fetch) fetch ;;
  *) echo "usage: $0 fetch" >&2; exit 2 ;;
esac
