#!/bin/sh
# --nv and --rocm against a fake driver tree made here: character nodes
# made with mknod (as root, removed afterwards), stub driver libraries in an
# ld.so cache of the test's own (CAPSULA_LD_CACHE) and stub nvidia-smi and
# rocm-smi; then nothing of it when it is absent.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

command -v cc >/dev/null || skip_all "no C compiler for the stub libraries"
# Absent first: this machine's own GPUs, if any, would show instead.
if [ -e /dev/nvidia0 ] || [ -e /dev/nvidiactl ] || [ -e /dev/kfd ]; then
	skip_all "this machine has GPU devices; the fake tree would mix with them"
fi
err=$(capsula_exec --join never --nv -- sh -c 'ls /dev/nvidia* /.capsula 2>&1' 2>&1)
like "$err" "warning: --nv: no NVIDIA GPU device on this node" "--nv without a GPU warns"
like "$err" "warning: --nv: no NVIDIA driver library in the ld.so cache" "and names the missing driver"
like "$err" "/dev/nvidia\*: No such file" "no NVIDIA device inside"
like "$err" "/.capsula: No such file" "and nothing bound"
err=$(capsula_exec --join never --rocm -- ls /dev/kfd 2>&1)
like "$err" "warning: --rocm: no AMD GPU device on this node" "--rocm without a GPU warns"
like "$err" "/dev/kfd: No such file" "no /dev/kfd inside"
is_root || skip_all "making fake GPU device nodes needs root"

exec 8>/tmp/capsula-check-gpu.lock
flock -x 8
cleanup() {
	rm -rf /dev/nvidia0 /dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-caps /dev/kfd \
		"$fake_dri" "$WORK"
}
fake_dri=""
[ -e /dev/dri ] || fake_dri=/dev/dri
trap cleanup EXIT
if ! { mknod -m 0666 /dev/nvidia0 c 195 0 && mknod -m 0666 /dev/nvidiactl c 195 255 &&
	mknod -m 0666 /dev/nvidia-uvm c 509 0 && mkdir /dev/nvidia-caps &&
	mknod -m 0400 /dev/nvidia-caps/nvidia-cap1 c 508 1 &&
	mknod -m 0666 /dev/kfd c 234 0; }; then
	bail_out "cannot make fake GPU nodes"
fi
if [ -n "$fake_dri" ] && ! { mkdir /dev/dri && mknod -m 0666 /dev/dri/renderD128 c 226 128; }; then
	bail_out "cannot make /dev/dri"
fi

# Stub libraries with the drivers' sonames, in a cache of their own.
lib=$WORK/driver/lib
mkdir -p "$lib" "$WORK/driver/bin"
echo 'int capsula_stub(void) { return 42; }' > "$WORK/stub.c"
for soname in libcuda.so.1 libnvidia-ml.so.1 libnvidia-ptxjitcompiler.so.1 \
              libamdhip64.so.6 libhsa-runtime64.so.1 libunrelated.so.1; do
	if ! { cc -shared -fPIC -Wl,-soname,"$soname" -o "$lib/$soname.550.54" "$WORK/stub.c" &&
	       ln -s "$soname.550.54" "$lib/$soname"; }; then
		bail_out "cannot build $soname"
	fi
done
echo "$lib" > "$WORK/driver/ld.so.conf"
ldconfig -X -C "$WORK/driver/ld.so.cache" -f "$WORK/driver/ld.so.conf" || bail_out "ldconfig failed"
printf '#!/bin/sh\necho "NVIDIA-SMI 550.54 (stub) $*"\n' > "$WORK/driver/bin/nvidia-smi"
printf '#!/bin/sh\necho "ROCm System Management Interface (stub)"\n' > "$WORK/driver/bin/rocm-smi"
chmod -R a+rX "$WORK/driver"
chmod 0755 "$WORK/driver/bin/nvidia-smi" "$WORK/driver/bin/rocm-smi"
gpu_env="CAPSULA_LD_CACHE=$WORK/driver/ld.so.cache PATH=$WORK/driver/bin:/usr/bin:/bin"

gpu_exec() {  # CAPSULA-OPTIONS -- COMMAND...
	place_image "$IMAGE" "$@"
	eval "set -- $image_argv"
	# shellcheck disable=SC2086 # gpu_env is NAME=VALUE words
	as_user $gpu_env "$CAPSULA" exec "$@"
}

out=$(gpu_exec --join never --nv -- sh -c 'ls -l /dev/nvidia0 /dev/nvidiactl /dev/nvidia-uvm;
	ls /dev/nvidia-caps; ls /.capsula/gpu/lib; echo "LD=$LD_LIBRARY_PATH"; echo "PATH=$PATH";
	nvidia-smi -L; ls /dev/kfd 2>&1' 2>&1)
like "$out" "^crw.* 195, +0 .*/dev/nvidia0$" "--nv: /dev/nvidia0 is the host's 195:0"
like "$out" "^crw.* 195, +255 .*/dev/nvidiactl$" "/dev/nvidiactl"
like "$out" "^crw.* 509, +0 .*/dev/nvidia-uvm$" "/dev/nvidia-uvm"
like "$out" "^nvidia-cap1$" "/dev/nvidia-caps/"
like "$out" "^libcuda.so.1$" "libcuda.so.1 under /.capsula/gpu/lib"
like "$out" "^libnvidia-ml.so.1$" "libnvidia-ml.so.1"
like "$out" "^libnvidia-ptxjitcompiler.so.1$" "libnvidia-ptxjitcompiler.so.1"
unlike "$out" "libunrelated|libamdhip" "no library outside the NVIDIA driver's set"
like "$out" "^LD=/.capsula/gpu/lib(:|$)" "LD_LIBRARY_PATH starts with it"
like "$out" "^PATH=/.capsula/gpu/bin:" "PATH starts with the driver's programs"
like "$out" "^NVIDIA-SMI 550.54 \(stub\) -L$" "the host's nvidia-smi runs inside"
like "$out" "/dev/kfd: No such file" "no AMD device with --nv alone"
unlike "$out" "warning" "no warning when the driver is there"
inside=$(gpu_exec --join never --nv -- md5sum /.capsula/gpu/lib/libcuda.so.1 | cut -d' ' -f1)
is "$inside" "$(md5sum "$lib/libcuda.so.1.550.54" | cut -d' ' -f1)" "libcuda.so.1 is the host's file (the link's target)"
mountinfo=$(gpu_exec --join never --nv -- cat /proc/self/mountinfo)
like "$mountinfo" " /.capsula/gpu/lib/libcuda.so.1 ro," "the libraries are bound read-only"
like "$mountinfo" " /dev/nvidia0 rw,nosuid[, ]" "the device is bound without nodev"

out=$(gpu_exec --join never --rocm -- sh -c 'ls -l /dev/kfd /dev/dri/renderD128;
	ls /.capsula/gpu/lib; rocm-smi; ls /dev/nvidia0 2>&1' 2>&1)
like "$out" "^crw.* 234, +0 .*/dev/kfd$" "--rocm: /dev/kfd"
like "$out" "^crw.* 226, +128 .*/dev/dri/renderD128$" "/dev/dri"
like "$out" "^libamdhip64.so.6$" "libamdhip64.so.6"
like "$out" "^libhsa-runtime64.so.1$" "libhsa-runtime64.so.1"
unlike "$out" "libcuda" "no NVIDIA library with --rocm alone"
like "$out" "ROCm System Management Interface \(stub\)" "the host's rocm-smi runs inside"
like "$out" "/dev/nvidia0: No such file" "no NVIDIA device with --rocm alone"

out=$(place_image "$IMAGE" --join never --nv -e -- sh -c 'echo "C=$CUDA_VISIBLE_DEVICES"'
	eval "set -- $image_argv"
	# shellcheck disable=SC2086
	as_user $gpu_env CUDA_VISIBLE_DEVICES=1 "$CAPSULA" exec "$@" 2>&1)
is "$out" "C=1" "CUDA_VISIBLE_DEVICES passes, even with --cleanenv"
out=$(gpu_exec --join never --dev host --nv -- sh -c 'ls /.capsula/gpu/lib; ls -l /dev/nvidia0')
like "$out" "^libcuda.so.1$" "--dev host --nv: the libraries are bound"
like "$out" "195, +0 " "and the host's /dev brings the device"
out=$(gpu_exec --join never -- sh -c 'ls /dev/nvidia0 /.capsula 2>&1')
like "$out" "/dev/nvidia0: No such file" "without --nv no GPU device"
like "$out" "/.capsula: No such file" "and no driver"

plan=$(gpu_exec --dry-run --nv -- true)
like "$plan" "bind +/dev/nvidia0 -> /dev/nvidia0" "--dry-run lists the device"
like "$plan" "bind +$lib/libcuda.so.1.550.54 -> /.capsula/gpu/lib/libcuda.so.1 \(ro\)" "and the libraries"
ok "--nv is part of the join key" differ_nonempty "$(printf '%s\n' "$plan" | grep '^join')" \
	"$(gpu_exec --dry-run -- true | grep '^join')"

# doctor reports what --nv and --rocm would bring.
report=$(as_user env CAPSULA_LD_CACHE="$WORK/driver/ld.so.cache" PATH="$WORK/driver/bin:/usr/bin:/bin" \
	"$CAPSULA" doctor)
like "$report" "^ok +gpu nvidia +--nv binds nvidia0, nvidiactl, nvidia-uvm, nvidia-caps; libraries .*libcuda.so.1.*; programs nvidia-smi" \
	"doctor lists the NVIDIA devices, libraries and programs"
like "$report" "^ok +gpu amd +--rocm binds kfd, dri; libraries .*libamdhip64.so.6" "and the AMD ones"
json=$(as_user env CAPSULA_LD_CACHE="$WORK/driver/ld.so.cache" "$CAPSULA" doctor --json)
is "$(printf '%s' "$json" | jq -r '.checks[] | select(.name == "gpu nvidia") | .status')" ok \
	"doctor --json has the GPU check"
done_testing
