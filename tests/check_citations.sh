#!/usr/bin/env bash
# Every document a source file cites ("docs/rules.md §2") exists in the
# repository with that section, and nothing cites a document it does not
# hold. Run by ctest (unit tier) from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS=: read -r file cite; do
        doc=${cite%% *}
        section=${cite#"$doc"}
        section=${section# }
        if [[ ! -f $doc ]]; then
                echo "$file cites $doc, which does not exist" >&2
                bad=1
        elif [[ -n $section ]] && ! grep -q "^## $section " "$doc"; then
                echo "$file cites $doc $section, which has no such section" >&2
                bad=1
        fi
done < <(git ls-files -co --exclude-standard | grep -v '^docs/\|^README.md$' |
        xargs grep -oE 'docs/[a-z_]+\.md( §[0-9]+)?' 2>/dev/null | sort -u)
if git ls-files -co --exclude-standard | xargs grep -nE '(SPEC|ARCHITECTURE)(\.md)? ?§' 2>/dev/null; then
        echo "citations of documents the repository does not hold (above)" >&2
        bad=1
fi
exit "$bad"
