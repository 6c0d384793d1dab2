#!/usr/bin/env bash
# Regenerate the locks from pyproject.toml (needs pip-tools: pip install pip-tools).
# runtime.lock: what the production image installs (the package's dependencies and the kafka
# extra). test.lock: the runtime lock plus the test tools (the test command installs it).
# Existing pins are kept; add --upgrade-package NAME to move one. Every line carries hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
compile=(pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe
         --no-emit-index-url --no-emit-find-links)
"${compile[@]}" "$@" --extra kafka -o requirements/runtime.lock pyproject.toml
"${compile[@]}" "$@" --extra kafka --extra test -c requirements/runtime.lock \
    -o requirements/test.lock pyproject.toml
