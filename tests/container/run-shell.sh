#!/bin/sh
# capsula run and shell; images made by Apptainer (its env scripts and
# runscript), also inside a SIF file, run without Apptainer.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || skip_all "no static busybox on the host (apt-get install busybox-static)"
command -v perl >/dev/null || skip_all "no perl to write a SIF header"

# An image laid out as Apptainer lays out its own.
root=$WORK/apptainer-root
mkdir -p "$root/bin" "$root/.singularity.d/env" "$root/etc"
cp "$busybox" "$root/bin/busybox"
for applet in sh cat echo env; do ln -s busybox "$root/bin/$applet"; done
cat > "$root/.singularity.d/env/90-environment.sh" <<'SH'
export FROM_APPTAINER="set by an env script"
PS1="Apptainer> "
SH
cat > "$root/.singularity.d/runscript" <<'SH'
#!/bin/sh
echo "runscript says $FROM_APPTAINER, args: $*"
SH
chmod 0755 "$root/.singularity.d/runscript"
mksquashfs "$root" "$WORK/apptainer.sqfs" -all-root -noappend -quiet -no-progress >/dev/null ||
	bail_out "mksquashfs failed"

# The same squashfs inside a SIF: header, one partition descriptor, data.
make_sif() {  # SQUASHFS SIF [DATATYPE]
	perl -e '
		my ($sqfs, $sif, $type) = @ARGV;
		my $size = -s $sqfs; my $data = 4096;
		open(my $out, ">", $sif) or die;
		binmode $out;
		print $out pack("a32 a10 a3 a3 a16 q< q< q< q< q< q< q< q<",
			"#!/usr/bin/env run-singularity\n", "SIF_MAGIC", "01", "02", "0123456789abcdef",
			0, 0, 0, 1, 128, 585, $data, $size);
		print $out pack("l< C L< L< L< q< q< q< q< q< q< q< a128 l< l< a3 a373",
			$type, 1, 1, 0xf0000001, 0, $data, $size, $size, 0, 0, 0, 0, "rootfs",
			1, 2, "02", "");
		print $out "\0" x ($data - tell($out));
		open(my $in, "<", $sqfs) or die; binmode $in;
		local $/; my $image = <$in>; print {$out} $image;' "$1" "$2" "${3:-16388}"
}
make_sif "$WORK/apptainer.sqfs" "$WORK/apptainer.sif"
make_sif "$WORK/apptainer.sqfs" "$WORK/nopartition.sif" 16385
chmod a+r "$WORK"/*.sqfs "$WORK"/*.sif

for img in apptainer.sqfs apptainer.sif; do
	out=$(as_user "$CAPSULA" run "$WORK/$img" one two); rc=$?
	is "$rc" 0 "$img: run exits 0"
	is "$out" "runscript says set by an env script, args: one two" \
		"$img: run sources the env scripts and passes the arguments to the runscript"
	is "$(as_user "$CAPSULA" exec "$WORK/$img" sh -c 'echo $FROM_APPTAINER')" "set by an env script" \
		"$img: exec sees the env scripts' variables"
done
is "$(echo 'echo "$PS1"' | as_user "$CAPSULA" shell "$WORK/apptainer.sif")" 'capsula:apptainer \w$ ' \
	"shell: the prompt names the image, not Apptainer's"

err=$(as_user "$CAPSULA" exec "$WORK/nopartition.sif" true 2>&1); rc=$?
is "$rc" 125 "a SIF without a squashfs partition fails with 125"
like "$err" "^capsula: image .*nopartition.sif: no squashfs system partition" "and says why"
head -c 100 "$WORK/apptainer.sif" > "$WORK/short.sif"; chmod a+r "$WORK/short.sif"
err=$(as_user "$CAPSULA" exec "$WORK/short.sif" true 2>&1); rc=$?
is "$rc" 125 "a SIF cut inside its header fails with 125"
like "$err" "^capsula: image .*short.sif: SIF header too short" "and says why"

# The busybox test image has neither metadata nor runscript.
err=$(as_user "$CAPSULA" run "$IMAGE" 2>&1); rc=$?
is "$rc" 125 "run of an image without a runscript fails with 125"
like "$err" "has no runscript, Entrypoint or Cmd; give a command with capsula exec" "and says what to do"
is "$(as_user "$CAPSULA" run "$IMAGE" echo args run as the command)" "args run as the command" \
	"run with arguments and no Entrypoint runs them"

out=$(printf 'echo "$PS1"; echo $0; exit 7\n' | as_user "$CAPSULA" shell "$IMAGE"); rc=$?
is "$rc" 7 "shell: the shell's exit status comes back"
is "$out" "capsula:$(basename "$IMAGE" .sqfs) \\w$ 
/bin/sh" "shell: /bin/sh with a prompt naming the image"
is "$(as_user "$CAPSULA" shell "$IMAGE" -c 'echo from -c')" "from -c" "shell passes its arguments to the shell"

done_testing
