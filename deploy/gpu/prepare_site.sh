#!/usr/bin/env bash
# Here, before deploy/gpu/train_builtin_v4.sh runs on the GPU machine: copy what its image lacks
# (diffusers, pure Python) from this checkout's .venv into .gpu_site/, which the device tool
# carries (`carry=[".gpu_site"]`). Ignored by git through .git/info/exclude.
set -euo pipefail
site=.venv/lib/python3.11/site-packages
rm -rf .gpu_site && mkdir -p .gpu_site
cp -r "$site/diffusers" .gpu_site/
find .gpu_site -name __pycache__ -prune -exec rm -rf {} +
grep -qx '/.gpu_site/' .git/info/exclude 2>/dev/null || echo '/.gpu_site/' >> "$(git rev-parse --git-path info/exclude)"
du -sh .gpu_site
