#!/bin/sh
# One-step setup for zfcpdump-build on Debian 12 (run as root, or with sudo available).
#
#   ./setup.sh build [RECIPE] [build options]   install what is needed, then build RECIPE (default)
#   ./setup.sh test  [pytest options]           install what is needed, then run the whole test suite
#
# Host packages come from Debian's apt; Python packages go into ./.venv. s390x packages
# (target CPython, zgetdump for the tests) are downloaded later by the build itself into
# its cache with a private apt state: nothing foreign-arch is ever installed on the host.
set -eu

BUILD_PACKAGES="gcc-s390x-linux-gnu binutils-s390x-linux-gnu libc6-dev-s390x-cross gcc libc6-dev make bc flex bison
  libelf-dev libssl-dev ccache libarchive13 python3 python3.11 python3-venv python3-pip ca-certificates
  cpio xz-utils zstd lz4 perl dpkg openssl e2fsprogs"
TEST_PACKAGES="qemu-system-misc qemu-user fdisk util-linux gdb-multiarch strace"

cd "$(dirname "$0")"
mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  build) packages="$BUILD_PACKAGES"; extras="" ;;
  test) packages="$BUILD_PACKAGES $TEST_PACKAGES"; extras="[test]" ;;
  *) echo "usage: $0 build [RECIPE] | test [pytest args]" >&2; exit 2 ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v apt-get >/dev/null 2>&1 || [ ! -f /etc/debian_version ]; then
  echo "This is not a Debian-like system. Install the equivalents of these Debian packages," >&2
  echo "then create .venv with: python3 -m venv .venv && .venv/bin/pip install -e '.$extras'" >&2
  echo "  $packages" | tr -s ' \n' ' ' >&2; echo >&2
  exit 1
fi

missing=""
for pkg in $packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "setup: installing host packages:$missing"
  as_root apt-get update -qq
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

# A .venv that is a symlink (possibly dangling, from another machine) or a venv whose
# interpreter no longer runs is replaced; a working one is kept.
if [ -L .venv ]; then
  echo "setup: replacing the .venv symlink ($(readlink .venv)) with a local venv"
  rm -f .venv
elif [ -e .venv ] && ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  echo "setup: .venv is broken; recreating it"
  rm -rf .venv
fi
if [ ! -e .venv ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"

case "$mode" in
  build) exec .venv/bin/python build.py build "${@:-default}" ;;
  test) exec .venv/bin/python -m pytest "$@" ;;
esac
