#!/usr/bin/env bash
# Build the documentation: docs/_build/html/index.html.
#
#   docs/build.sh            # from the repository root, in an environment with
#                            # pip install -e '.[docs]' done
#
# Installs the build-time JavaScript (KaTeX, pinned by docs/package-lock.json)
# with npm, then runs Sphinx with warnings as errors.  Extra arguments go to
# sphinx-build (e.g. -E to rebuild everything).
set -euo pipefail
docs="$(cd "$(dirname "$0")" && pwd)"
if [ ! -f "$docs/node_modules/katex/dist/katex.min.js" ] || \
   [ "$docs/package-lock.json" -nt "$docs/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$docs" --no-audit --no-fund
fi
python -m sphinx -W --keep-going -b html "$@" "$docs" "$docs/_build/html"
