#!/bin/sh
# Makes the small git repository that mission-briefs/demo-git.md works on:
# mission-briefs/demo-git-repo (ignored by Squad's own repository), or DIR.
# Run it once; the demo then leaves a branch squad/<mission> in it.
set -eu
dir="${1:-$(dirname "$0")/demo-git-repo}"
if [ -d "$dir/.git" ]; then
  echo "demo repository already there: $dir"
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
git init -q -b main
cat > README.md <<'MD'
# demo-git

A tiny repository for Squad's git workspace demo. The mission adds
`greeting.txt` and `numbers.txt` in two parallel tasks, then `SUMMARY.md`
from both, each task one commit on branch `squad/<mission>`.
MD
printf 'one\n' > numbers.txt
git add -A
git -c user.name="Squad demo" -c user.email=demo@squad.local commit -q -m "Demo repository"
echo "demo repository created: $(pwd)"
