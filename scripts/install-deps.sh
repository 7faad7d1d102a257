#!/usr/bin/env bash
# scripts/install-deps.sh: install the Debian packages and the Node.js/npm the build and tests need,
# only what is missing (fast when everything is there). Runs apt-get as root, or through sudo.
set -euo pipefail
pkgs=(build-essential gcc g++ make cmake ninja-build git pkg-config openssl ca-certificates
      libmicrohttpd-dev libwslay-dev libjansson-dev libyaml-dev libcmocka-dev libcurl4-openssl-dev
      libpng-dev libjpeg62-turbo-dev libwebp-dev # images: docs/API.md "Images"
      libsndfile1-dev libmpg123-dev libvorbis-dev libsoxr-dev # audio: docs/AUDIO.md
      libssl-dev # sha256 of pulled models (OpenSSL libcrypto): switchyard pull
      libespeak-ng-dev # the built-in voice (switchyard-espeak only; GPL-3.0+)
      clang-format # make format; make test checks every C file against .clang-format
      ffmpeg # M4A/AAC/WebM uploads and aac speech: a subprocess, optional at run time (docs/AUDIO.md)
      systemd # systemd-analyze: tests/install.sh verifies the unit (no running init needed)
      chromium # the status page's browser test (tests/browser: puppeteer-core drives it, headless)
      curl jq nodejs npm prometheus) # prometheus: its promtool validates GET /metrics in the tests; jq: bench scripts, tests/install.sh
missing=()
for p in "${pkgs[@]}"; do
  # node and npm may come from elsewhere (nodesource, nvm): accept the commands as they are.
  case $p in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
