#!/usr/bin/env bash
# scripts/gpu-prepare.sh — pack, HERE, what scripts/gpu-check.sh --gpu needs on a lent GPU machine
# that has no package registry (docs/GPU-CHECK.md). Writes .gpu/ in this checkout (ignored by
# .gitignore, so it travels only when the device call names it in `carry`):
#   .gpu/bin/       the daemon, the HTTP clients and the gpucheck driver, built here (CPU-only: no engine inside)
#   .gpu/debs/      Debian runtime packages those need (ldd), plus libjansson-dev for building the
#                   workers there; unpacked there with dpkg -x into .gpu/sysroot, never into /
#   .gpu/engines-src.tar.xz  llama.cpp + whisper.cpp sources from the verified engine cache, pruned
#                   (no .git, docs, benches, unused vocabularies), for SWITCHYARD_ENGINE_SRC
# and checks that what travels (tracked + untracked-not-ignored files + .gpu) stays under 64 MiB.
# Needs: the CPU engines built (make), apt-get (download only), xz. Writes nothing outside .gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=.gpu
limit=$((64 * 1024 * 1024))
log() { echo "gpu-prepare: $*" >&2; }

# .gpu/ must be ignored (then it travels only through `carry`): .gitignore has it; an older checkout
# without that line gets it in .git/info/exclude
if ! git check-ignore -q .gpu/probe; then
  excl=$(git rev-parse --git-common-dir)/info/exclude
  mkdir -p "$(dirname "$excl")"
  echo '/.gpu/' >>"$excl"
fi

log "building the daemon and clients (CPU build, no engine linked)"
make --no-print-directory build/bin/switchyard build/bin/bench build/bin/gpucheck-load build/bin/gpucheck >/dev/null
rm -rf "$out" && mkdir -p "$out/bin" "$out/debs"
for b in switchyard bench gpucheck-load gpucheck; do
  cp "build/bin/$b" "$out/bin/" && strip "$out/bin/$b"
done

# Runtime libraries: every shared object ldd resolves, minus glibc, the compiler runtimes (newer
# there, and ABI-compatible upward) and the loader. Mapped to their packages with dpkg -S.
skip='^(libc6|libstdc\+\+6|libgcc-s1|libgomp1|libc6-dev)$'
libs=$(for b in "$out"/bin/*; do ldd "$b" | awk '/=> \//{print $3}'; done | sort -u)
pkgs=$(for l in $libs; do dpkg -S "$(readlink -f "$l")" 2>/dev/null || dpkg -S "$l" 2>/dev/null || true; done |
       cut -d: -f1 | sort -u | grep -Ev "$skip" || true)
pkgs="$pkgs libjansson-dev"
log "downloading $(echo $pkgs | wc -w) packages: $(echo $pkgs)"
(cd "$out/debs" && apt-get download $pkgs >/dev/null)

log "packing engine sources (xz; takes a minute or two on 2 cores)"
src=$(dirname "$(deps/engines.sh print-prefix)")/src
[ -d "$src/llama.cpp" ] && [ -d "$src/whisper.cpp" ] || { echo "gpu-prepare: no engine sources at $src (run make first)" >&2; exit 1; }
keep_vocab='ggml-vocab-(qwen2|bert-bge|llama-spm|llama-bpe)\.gguf$'
list=$(mktemp)
(cd "$src" && find llama.cpp whisper.cpp \
    \( -path llama.cpp/.git -o -path llama.cpp/docs -o -path llama.cpp/benches -o -path llama.cpp/media \
       -o -path whisper.cpp/ggml -o -path whisper.cpp/bindings -o -path whisper.cpp/examples \
       -o -path whisper.cpp/.git -o -path whisper.cpp/models -o -path whisper.cpp/samples \) -prune -o \
    \( -type f -o -type l \) -print |
  grep -Ev '^llama\.cpp/models/ggml-vocab-.*\.gguf(\.inp|\.out)?$' ) >"$list"
(cd "$src" && ls llama.cpp/models/ | grep -E "$keep_vocab" | sed 's|^|llama.cpp/models/|') >>"$list"
echo whisper.cpp/bindings/javascript/package-tmpl.json >>"$list" # whisper's CMakeLists configures it
tar -C "$src" -cf - -T "$list" | xz -T2 -6 >"$out/engines-src.tar.xz"
rm -f "$list"

travel=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -L -c %s 2>/dev/null || true;
          find "$out" -type f -printf '%s\n') | awk '{s+=$1} END {print s+0}')
log "packed: $(du -sh "$out" | cut -f1) in $out; everything that travels: $((travel / 1024 / 1024)) MiB of 64"
du -sh "$out"/* >&2
if [ "$travel" -ge "$limit" ]; then
  echo "gpu-prepare: what would travel is $travel bytes, over the 64 MiB limit" >&2
  exit 1
fi
echo "$root/$out"
