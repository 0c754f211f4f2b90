#!/usr/bin/env bash
# Prints the path of a Python interpreter with tests/requirements.txt
# installed: a virtual environment in the user's cache, made once per version
# of the requirements file (a changed file makes a new one).
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/requirements.txt
sum=$(sha256sum "$req" | cut -c1-16)
base=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/refstream
venv=$base/venv-$sum
if [[ ! -x $venv/bin/python || ! -f $venv/.complete ]]; then
        mkdir -p "$base"
        (
                flock -w 600 9 || { echo "pyenv.sh: timed out waiting for $base/.venv.lock" >&2; exit 1; }
                if [[ ! -f $venv/.complete ]]; then
                        echo "pyenv.sh: creating $venv" >&2
                        rm -rf "$venv"
                        python3 -m venv "$venv"
                        "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
                        touch "$venv/.complete"
                fi
        ) 9>"$base/.venv.lock"
fi
printf '%s\n' "$venv/bin/python"
