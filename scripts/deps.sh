#!/usr/bin/env bash
# Install every Debian 12 package kmodd needs to build, test and demo.
# Idempotent: packages already present are skipped; apt-get only.
set -euo pipefail

PKGS=(
	# build
	build-essential meson ninja-build pkg-config
	libkmod-dev libudev-dev libsolv-dev libsolvext-dev libsystemd-dev
	libcurl4-openssl-dev librpm-dev libjson-c-dev libsqlite3-dev
	liblzma-dev libzstd-dev zlib1g-dev
	# tools the tests compare against or drive
	kmod rpm rpm2cpio cpio createrepo-c zypper dnf nginx hyperfine curl
	xz-utils zstd gnupg python3 jq sqlite3
	# promtool checks the audit metrics (kmodctl audit --prometheus)
	prometheus
	# the VM tier
	qemu-system-x86 busybox-static udev
)

missing=()
for p in "${PKGS[@]}"; do
	case "$p" in \#*) continue ;; esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
