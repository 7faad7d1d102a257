#!/usr/bin/env bash
# deps/engines.sh: fetch the pinned engine sources from the npm registry, verify them against
# deps/versions.env, and build llama.cpp (ggml, llama, mtmd, llama-server) and whisper.cpp (on
# llama.cpp's ggml) into a cache outside the repository, keyed by version + build flags.
#
# Usage: deps/engines.sh [print-prefix]
#   GPU=cpu|cuda|vulkan|hip   backend (default cpu)   CUDA_ARCH=90   single CUDA target
#   AMX=1                     keep ggml's Intel AMX kernels (compiled out by default: see below)
#   SWITCHYARD_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/switchyard)
#   SWITCHYARD_ENGINE_SRC     a .tar.xz of llama.cpp/ + whisper.cpp/ to build instead of fetching
#                             (made by scripts/gpu-prepare.sh for machines without a registry)
# Prints nothing but progress on stderr; with "print-prefix" prints the install prefix on stdout.
# Must never write into the repository, and never trust an unpacked tarball it did not verify.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

GPU=${GPU:-cpu}
CUDA_ARCH=${CUDA_ARCH:-}
JOBS=${JOBS:-$(nproc)}
cache=${SWITCHYARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard}

flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF
       -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON
       -DLLAMA_BUILD_TOOLS=ON -DGGML_NATIVE=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON
       -DGGML_RPC=ON)
# GGML_RPC: ggml's RPC backend (libggml-rpc.a: a worker adds a model's `rpc:` servers as devices,
# docs/CONFIG.md) and its server, ggml-rpc-server (`switchyard rpc-server` runs it on the other box).
# Being in flags, it is in the cache key: a cache from before it is never reused without it.
# ggml's AMX matrix kernels (Intel Sapphire Rapids and later) crash on the first quantized matmul
# (llama.cpp #20824, open, segfault in ggml_backend_amx_mul_mat; seen here with Q8_0 and Q4_K_M).
# -march=native turns them on wherever the CPU has AMX, so the newcomer with such a Xeon got a
# worker that crashes on every Q4/Q5/Q8 model. They are compiled out unless AMX=1: the weights then
# take the CPU repack path (AVX2/AVX-512) that every other x86 machine uses. docs/PERFORMANCE.md has
# what that costs ("Intel AMX").
AMX=${AMX:-0}
case "$AMX" in
  0) [ "$(uname -m)" = x86_64 ] &&
       flags+=("-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
               "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16") ;;
  1) ;;
  *) echo "engines.sh: AMX=$AMX (0 or 1)" >&2; exit 2 ;;
esac
case "$GPU" in
  cpu) ;;
  cuda) flags+=(-DGGML_CUDA=ON); [ -n "$CUDA_ARCH" ] && flags+=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH") ;;
  vulkan) flags+=(-DGGML_VULKAN=ON) ;;
  hip) flags+=(-DGGML_HIP=ON); [ -n "$CUDA_ARCH" ] && flags+=(-DAMDGPU_TARGETS="$CUDA_ARCH") ;;
  *) echo "engines.sh: unknown GPU=$GPU (cpu, cuda, vulkan, hip)" >&2; exit 2 ;;
esac

key=$(printf '%s\n' "$LLAMA_NPM_INTEGRITY" "$WHISPER_NPM_INTEGRITY" "$GPU" "$(uname -m)" "${flags[*]}" |
      sha256sum | cut -c1-12)
root="$cache/engines-$LLAMA_TAG-whisper-$WHISPER_NPM_VERSION-$GPU-$key"
prefix="$root/install"

if [ "${1:-}" = print-prefix ]; then echo "$prefix"; exit 0; fi
log() { echo "engines: $*" >&2; }
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)

# whisper.cpp's libwhisper and libparakeet (Parakeet-TDT has its own C API, include/parakeet.h) on
# llama.cpp's ggml, from $root/src/whisper.cpp into $prefix. Its own build tree, so two builds
# racing to upgrade a cache do not share one. Arguments: the libraries to build (whisper, parakeet).
build_whisper() {
  log "building whisper.cpp ($*) on llama.cpp's ggml"
  local b; b=$(mktemp -d "$root/build-whisper.XXXXXX")
  cmake -S "$src/whisper.cpp" -B "$b" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DWHISPER_USE_SYSTEM_GGML=ON -DCMAKE_PREFIX_PATH="$prefix" \
        -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=OFF -DWHISPER_BUILD_SERVER=OFF \
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON >"$root/cmake-whisper.log" 2>&1 ||
    { tail -40 "$root/cmake-whisper.log" >&2; exit 1; }
  cmake --build "$b" -j "$JOBS" --target "$@" >"$root/build-whisper.log" 2>&1 ||
    { tail -40 "$root/build-whisper.log" >&2; exit 1; }
  local h t
  for h in whisper.h parakeet.h; do # unchanged headers keep their time (no needless recompiles)
    cmp -s "$src/whisper.cpp/include/$h" "$prefix/include/$h" || cp "$src/whisper.cpp/include/$h" "$prefix/include/"
  done
  for t in "$@"; do # parakeet last: libparakeet.a's presence marks a cache that has it
    cp "$b/src/lib$t.a" "$prefix/lib/lib$t.a.part" && mv "$prefix/lib/lib$t.a.part" "$prefix/lib/lib$t.a"
  done
  rm -rf "$b"
}

src="$root/src"
if [ -f "$root/.done" ]; then
  # a cache built before Parakeet support: add libparakeet from the kept sources
  [ -f "$prefix/lib/libparakeet.a" ] || build_whisper parakeet
  echo "$prefix"; exit 0
fi
mkdir -p "$cache/tarballs" "$root"

# fetch NAME VERSION INTEGRITY -> path of the verified tarball
fetch() {
  local name=$1 ver=$2 integ=$3 tgz="$cache/tarballs/$1-$2.tgz"
  if [ ! -f "$tgz" ]; then
    log "npm pack $name@$ver"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$name@$ver" >/dev/null)
    mv "$tmp/$name-$ver.tgz" "$tgz.part" && rmdir "$tmp"
    mv "$tgz.part" "$tgz"
  fi
  local algo=${integ%%-*} want=${integ#*-} got
  got=$(openssl dgst -"$algo" -binary "$tgz" | base64 -w0)
  if [ "$got" != "$want" ]; then
    rm -f "$tgz"
    echo "engines.sh: integrity check failed for $name@$ver (want $integ, got $algo-$got)" >&2
    exit 1
  fi
  echo "$tgz"
}

rm -rf "$src" && mkdir -p "$src"
if [ -n "${SWITCHYARD_ENGINE_SRC:-}" ]; then
  # A machine with no registry (a lent GPU, docs/GPU-CHECK.md): the sources come as an archive
  # that scripts/gpu-prepare.sh made from a verified cache (llama.cpp/ and whisper.cpp/, pruned).
  log "unpacking engine sources from $SWITCHYARD_ENGINE_SRC (not fetched: made by gpu-prepare.sh)"
  if command -v xz >/dev/null; then
    tar -xJf "$SWITCHYARD_ENGINE_SRC" -C "$src"
  else # no xz-utils there: Python's lzma reads it
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$SWITCHYARD_ENGINE_SRC" "$src"
  fi
  [ -f "$src/llama.cpp/CMakeLists.txt" ] && [ -f "$src/whisper.cpp/CMakeLists.txt" ] ||
    { echo "engines.sh: $SWITCHYARD_ENGINE_SRC holds no llama.cpp/ and whisper.cpp/" >&2; exit 1; }
else
ltgz=$(fetch "$LLAMA_NPM_PKG" "$LLAMA_NPM_VERSION" "$LLAMA_NPM_INTEGRITY")
wtgz=$(fetch "$WHISPER_NPM_PKG" "$WHISPER_NPM_VERSION" "$WHISPER_NPM_INTEGRITY")
log "unpacking llama.cpp $LLAMA_TAG from the git bundle"
tar -xzf "$ltgz" -C "$src" package/llama/gitRelease.bundle
git clone -q --depth 1 "$src/package/llama/gitRelease.bundle" "$src/llama.cpp" 2>/dev/null ||
  git clone -q "$src/package/llama/gitRelease.bundle" "$src/llama.cpp"
rm -rf "$src/package"
log "unpacking whisper.cpp $WHISPER_NPM_VERSION"
tar -xzf "$wtgz" -C "$src" package/cpp/whisper.cpp
mv "$src/package/cpp/whisper.cpp" "$src/whisper.cpp" && rm -rf "$src/package"
fi

log "building llama.cpp ($GPU) with $JOBS jobs"
cmake -S "$src/llama.cpp" -B "$root/build-llama" "${gen[@]}" "${flags[@]}" \
      -DCMAKE_INSTALL_PREFIX="$prefix" >"$root/cmake-llama.log" 2>&1 ||
  { tail -40 "$root/cmake-llama.log" >&2; exit 1; }
cmake --build "$root/build-llama" -j "$JOBS" --target llama mtmd llama-server llama-quantize \
      llama-fit-params ggml-rpc-server >"$root/build-llama.log" 2>&1 ||
  { tail -40 "$root/build-llama.log" >&2; exit 1; }
cmake --install "$root/build-llama" >/dev/null 2>&1 || true
mkdir -p "$prefix/lib" "$prefix/bin" "$prefix/include" "$prefix/share/vocab"
# Static archives and headers we link against, copied explicitly (install() may skip some).
find "$root/build-llama" -name '*.a' -exec cp {} "$prefix/lib/" \;
cp "$src/llama.cpp/include/"*.h "$src/llama.cpp/ggml/include/"*.h "$src/llama.cpp/tools/mtmd/mtmd.h" \
   "$src/llama.cpp/tools/mtmd/mtmd-helper.h" "$prefix/include/"
for b in llama-server llama-quantize llama-fit-params ggml-rpc-server; do
  cp "$root/build-llama/bin/$b" "$prefix/bin/"
done
cp "$src/llama.cpp/models/"ggml-vocab-*.gguf "$prefix/share/vocab/"
cp "$src/llama.cpp/tools/mtmd/test-1.jpeg" "$prefix/share/" 2>/dev/null || true

build_whisper whisper parakeet

# Keep the llama.cpp sources (templates, vocabularies, tools) but drop the build trees' objects.
find "$root/build-llama" -name '*.o' -delete
touch "$root/.done"
log "done: $prefix"
echo "$prefix"
