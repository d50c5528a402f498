#!/bin/sh
# Build the MPI test image: Debian 12 minbase with Debian's Open MPI runtime,
# plus capsula's MPI test programs compiled against that same Open MPI.
# Usage: build.sh OUTPUT.sqfs SOURCE-DIR-OF-PROGRAMS
# The programs are also left, built for the host, in OUTPUT's directory under
# mpi-bin/, for native runs to compare with.
# Needs mmdebstrap, mpicc (libopenmpi-dev) and mksquashfs; runs as root, or
# as a user with mmdebstrap's unshare mode (subordinate ids in /etc/subuid).
set -eu

out=${1:?usage: build.sh OUTPUT.sqfs PROGRAM-SOURCE-DIR}
src=${2:?usage: build.sh OUTPUT.sqfs PROGRAM-SOURCE-DIR}
mirror=${CAPSULA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
for tool in mmdebstrap mpicc mksquashfs; do
	command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
	command -v "$tool" >/dev/null 2>&1 || {
		echo "build.sh: $tool not found; apt-get install mmdebstrap libopenmpi-dev squashfs-tools" >&2
		exit 1
	}
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root

# The programs are built against the host's libopenmpi-dev, which is the
# very Debian 12 Open MPI the image installs (same package version, same ABI).
mkdir -p "$work/bin"
for program in hello ring pingpong allreduce; do
	mpicc -O2 -Wall -Wextra -Werror -o "$work/bin/$program" "$src/$program.c"
done

# mmdebstrap removes /etc/resolv.conf; an image that keeps its mount points
# lets capsula bind onto them without covering /etc.
if [ "$(id -u)" = 0 ]; then mode=root; else mode=unshare; fi
mmdebstrap --mode="$mode" --variant=minbase --quiet \
	--include=libopenmpi3,openmpi-bin,libpmix2 \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--customize-hook='mkdir -p "$1/opt/capsula-tests"' \
	--customize-hook="copy-in $work/bin/hello $work/bin/ring $work/bin/pingpong $work/bin/allreduce /opt/capsula-tests" \
	--customize-hook='rm -rf "$1/var/cache/apt" "$1/var/lib/apt/lists"' \
	--customize-hook='touch "$1/etc/resolv.conf" "$1/etc/hosts"' \
	bookworm "$root" "$mirror" </dev/null

chmod 0755 "$root"
tmp="$out.tmp.$$"
mksquashfs "$root" "$tmp" -all-root -noappend -quiet -no-progress -comp zstd >/dev/null
mkdir -p "$(dirname "$out")/mpi-bin"
cp "$work"/bin/* "$(dirname "$out")/mpi-bin/"
mv "$tmp" "$out"
