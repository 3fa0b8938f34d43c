#!/bin/sh
# A Debian chroot with a newer QGIS from Debian's own packages, for the desktop tests:
#   tools/qgis_chroot.sh trixie   # QGIS 3.40 LTR, Python 3.13
#   tools/qgis_chroot.sh sid      # QGIS 3.44, Python 3.14
# Prints the chroot's path. It is kept between runs under $SEG_CHROOTS (default /var/cache/seg/chroots)
# and only made again when it is missing or unfinished; building one takes a few minutes.
set -eu
suite=$1
base=${SEG_CHROOTS:-/var/cache/seg/chroots}
root=$base/$suite
mirror=${SEG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages="qgis python3-qgis qgis-providers python3-pip python3-venv xvfb ca-certificates locales-all"

if [ -f "$root/.seg-ready" ]; then echo "$root"; exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
mkdir -p "$base"
build=$root.building
rm -rf "$build"
cleanup() { umount "$build/proc" 2>/dev/null || true; umount "$build/dev" 2>/dev/null || true; }
trap cleanup EXIT
echo "building the $suite chroot in $root (a few minutes)" >&2
debootstrap --variant=minbase "$suite" "$build" "$mirror" >"$base/$suite.log" 2>&1 \
  || { echo "debootstrap $suite failed; see $base/$suite.log" >&2; exit 1; }
echo 'Acquire::Check-Valid-Until "false";' >"$build/etc/apt/apt.conf.d/99seg"
mount --bind /proc "$build/proc"; mount --bind /dev "$build/dev"
chroot "$build" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages" \
  >>"$base/$suite.log" 2>&1 || { echo "installing QGIS into the $suite chroot failed; see $base/$suite.log" >&2; exit 1; }
chroot "$build" apt-get clean
# the host's CA bundle, so that pip inside reaches the index the way the host does (a proxy's CA included)
cp /etc/ssl/certs/ca-certificates.crt "$build/etc/ssl/certs/ca-certificates.crt"
cleanup
trap - EXIT
rm -rf "$root"
mv "$build" "$root"
touch "$root/.seg-ready"
echo "$root"
