#!/usr/bin/env bash
# Rebuilds the UI bundle (web/dist) from web/src with the locked npm
# packages. With --check (as .ci/run calls it), fails when the result
# differs from what is committed: the bundle must be rebuilt and
# committed with every change to the sources.
#
#   web/build.sh           rebuild web/dist
#   web/build.sh --check   rebuild, then fail if web/dist changed
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund --loglevel=error
node build.mjs
if [ "${1:-}" = "--check" ]; then
	changed=$(git status --porcelain --untracked-files=all -- dist)
	if [ -n "$changed" ]; then
		echo "web/dist differs from the committed bundle; run web/build.sh and commit web/dist:" >&2
		echo "$changed" >&2
		git --no-pager diff --stat -- dist >&2
		exit 1
	fi
	echo "web/dist matches the committed bundle"
fi
