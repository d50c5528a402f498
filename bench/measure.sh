# Shared by bench/build and bench/pull.
# shellcheck shell=sh

# measure NAME COMMAND...: wall, user, sys (s) and peak RSS (KiB) of the
# command, and the peak size of $out while it ran (KiB), appended to
# $work/results; $out is emptied and the page cache dropped first.
measure() {
	name=$1; shift
	rm -rf "$out" && mkdir -p "$out"
	sync
	echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
	peak=0
	/usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		used=$(du -sk "$out" 2>/dev/null | cut -f1)
		[ "${used:-0}" -gt "$peak" ] && peak=$used
		sleep 0.1
	done
	wait "$pid"
	read -r wall user sys rss < "$work/$name.time"
	printf '%s %s %s %s %s %s\n' "$name" "$wall" "$user" "$sys" "$rss" "$peak" >> "$work/results"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
