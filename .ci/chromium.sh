#!/usr/bin/env bash
# Installs Debian's Chromium for the console's browser test when it is missing, so that `make test`
# runs everywhere Go and apt do. Without root, sudo is used when present; otherwise it says what
# to run (the browser test then fails with the same advice: it never skips).
set -euo pipefail
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "chromium is missing: run 'apt-get install -y chromium' as root (the console's browser test needs it)" >&2
		exit 0
	fi
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium
