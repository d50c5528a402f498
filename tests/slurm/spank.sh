#!/bin/sh
# The SPANK plugin in a Slurm of the test's own (plugstack.conf naming the
# built spank_capsula.so): pyxis's --container-* options and their
# CAPSULA_CONTAINER_* variables, srun --mpi=pmix inside, sbatch with
# #SBATCH --container-image, a named container across the steps of one
# allocation, errors in one line, scancel leaving nothing behind, and a
# step without the options left as it is.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi
. "$abs_top_srcdir/tests/lib/slurm.sh"
require_slurm
require_plugin
. "$abs_top_srcdir/tests/lib/layout.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
registry_test_start
# Each capsula the plugin runs leaves its arguments in capsula.calls.
as_user touch "$WORK/capsula.calls"
chmod a+w "$WORK/capsula.calls"
printf '#!/bin/sh\nprintf "%%s\\n" "$*" >> %s/capsula.calls\nexec %s "$@"\n' "$WORK" "$CAPSULA" \
	> "$WORK/capsula-counted"
chmod a+rx "$WORK/capsula-counted"
slurm_start "required $PLUGIN capsula=$WORK/capsula-counted" || bail_out "cannot start Slurm"
trap 'registries_stop; slurm_stop' EXIT

# The test user's job, from a directory of the user's.
# srun's news of the queue (a job ending just before) never mixes with
# what the tasks print: --quiet.
user_job() {  # COMMAND [ARG...]: srun, sbatch or salloc, with a limit
	command=$1
	shift
	[ "$command" = srun ] && set -- --quiet "$@"
	as_user sh -c 'cd "$1" && shift && SLURM_CONF="$0" exec timeout 120 "$@"' \
		"$SLURM_CONF" "$WORK" "$command" "$@"
}
host_mnt=$(readlink /proc/self/ns/mnt)
as_user mkdir "$WORK/data"
echo from-the-host > "$WORK/data/file"
chmod a+r "$WORK/data/file"

# ------------------------------------------------------------ the options
out=$(user_job srun -n 1 readlink /proc/self/ns/mnt 2>&1)
is "$out" "$host_mnt" "a step without the options runs as it always did"
# The tasks join the step's container themselves (see below), as capsula
# exec would.
out=$(user_job srun -n 2 --container-image="$IMAGE" \
	grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status 2>&1)
is "$(printf '%s\n' "$out" | grep -c -E '^Cap(Inh|Prm|Eff|Bnd|Amb):[[:space:]]+0+$')" 10 \
	"a step's tasks have no capability"
is "$(printf '%s\n' "$out" | grep -c -E '^NoNewPrivs:[[:space:]]+1$')" 2 "and no way to gain one"
out=$(user_job srun -n 2 --mpi=pmix --container-image="$MPI_IMAGE" "$MPI_BIN/hello" 2>"$WORK/err")
rc=$?
is "$rc" 0 "srun --mpi=pmix -n 2 --container-image=IMAGE hello exits 0"
hellos=$(printf '%s\n' "$out" | grep '^hello rank')
is "$(printf '%s\n' "$hellos" | awk '{print $3}' | sort -n | tr '\n' ' ')" "0 1 " \
	"both ranks of the image's MPI program report"
is "$(printf '%s\n' "$hellos" | awk '{print $13}' | sort -u | wc -l)" 1 \
	"the tasks of the step share one container"
is "$(printf '%s\n' "$hellos" | awk '{print $11}' | sort -u)" "$TEST_UID" "they run as the user"
is "$(cat "$WORK/err")" "" "nothing on stderr"
out=$(user_job srun -n 2 --mpi=pmix --container-image="$MPI_IMAGE" "$MPI_BIN/pingpong" 4194304 2>&1)
like "$out" "^ +4194304 " "srun --mpi=pmix ping-pong between the step's tasks, 4 MiB"
like "$out" "^pingpong done$" "it completes"
out=$(user_job srun -n 2 --mpi=pmix --container-image="$MPI_IMAGE" sh -c \
	'echo "$SLURM_PROCID $PMIX_RANK ${PMIX_NAMESPACE%%.*}"' 2>&1 | sort)
is "$out" "$(printf '0 0 slurm\n1 1 slurm')" "Slurm's and PMIx's variables reach the tasks"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-mounts="$WORK/data:/data:ro" \
	sh -c 'cat /data/file; touch /data/new 2>&1' 2>&1)
like "$out" "^from-the-host" "--container-mounts binds a host directory"
like "$out" "Read-only file system" "read-only with :ro"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-workdir=/bin pwd 2>&1)
is "$out" /bin "--container-workdir"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-writable \
	sh -c 'echo x > /bin/new && echo written' 2>&1)
is "$out" written "--container-writable: the image is writable"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-readonly \
	sh -c 'echo x > /bin/new' 2>&1)
like "$out" "Read-only file system" "--container-readonly: it is not"
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
out=$(user_job srun -n 1 --container-image="$IMAGE" --no-container-mount-home \
	sh -c "cat /proc/self/mountinfo | grep -c ' $home ' || true" 2>&1)
is "$out" 0 "--no-container-mount-home: no home is bound"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-mount-home \
	sh -c "cat /proc/self/mountinfo | grep -c ' $home '" 2>&1)
is "$out" 1 "--container-mount-home: the home is bound"
is "$(user_job srun -n 1 --container-image="$IMAGE" --container-remap-root id -u 2>/dev/null)" 0 \
	"--container-remap-root: root inside"
is "$(user_job srun -n 1 --container-image="$IMAGE" id -u 2>&1)" "$TEST_UID" "else the user"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-nv true 2>&1)
like "$out" "--nv: no NVIDIA GPU device on this node" "--container-nv asks for the GPUs (none here)"
printf 'FROM %s\nENV CAPSULA_TEST_MARK=image\nENTRYPOINT ["echo", "entrypoint got"]\n' "$IMAGE" \
	> "$WORK/Dockerfile"
chmod a+r "$WORK/Dockerfile"
as_user "$CAPSULA" build -q "$WORK/entry.sqfs" "$WORK/Dockerfile" || bail_out "cannot build the entrypoint image"
out=$(user_job env CAPSULA_TEST_MARK=job srun -n 1 --container-image="$WORK/entry.sqfs" \
	sh -c 'echo "$CAPSULA_TEST_MARK"' 2>&1)
is "$out" image "the image's variables win over the job's"
out=$(user_job env CAPSULA_TEST_MARK=job srun -n 1 --container-image="$WORK/entry.sqfs" \
	--container-env=CAPSULA_TEST_MARK,NOT_SET sh -c 'echo "$CAPSULA_TEST_MARK"' 2>&1)
is "$out" job "--container-env NAME keeps the job's value"
out=$(user_job srun -n 1 --container-image="$WORK/entry.sqfs" --container-entrypoint one two 2>&1)
is "$out" "entrypoint got one two" "--container-entrypoint runs the image's entrypoint with the arguments"
out=$(user_job srun -n 1 --container-image="$WORK/entry.sqfs" echo no entrypoint 2>&1)
is "$out" "no entrypoint" "without it the command runs itself"
out=$(user_job env CAPSULA_CONTAINER_IMAGE="$IMAGE" CAPSULA_CONTAINER_REMAP_ROOT=1 \
	srun -n 1 id -u 2>/dev/null)
is "$out" 0 "CAPSULA_CONTAINER_IMAGE and CAPSULA_CONTAINER_REMAP_ROOT work as the options"

# ------------------------------------------- a registry image, pyxis's way
echo '{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}, "rootfs": {"type": "layers"}}' \
	> "$WORK/config.json"
mkdir -p "$WORK/layer/bin"
cp "$busybox" "$WORK/layer/bin/busybox"
for applet in sh cat id; do ln -s busybox "$WORK/layer/bin/$applet"; done
echo from-the-registry > "$WORK/layer/marker"
tar --owner=0 --group=0 -C "$WORK/layer" -cf - . | gzip -n > "$WORK/layer.tar.gz"
make_layout "$WORK/layout" v1 "$WORK/config.json" "$WORK/layer.tar.gz"
registry_start "$WORK/reg" none || bail_out "the registry did not start"
push "$WORK/layout:v1" app:v1 || bail_out "skopeo cannot push the test image"
layer=$(printf 'sha256:%s' "$(sha256sum "$WORK/layer.tar.gz" | cut -d' ' -f1)")
out=$(user_job env CAPSULA_TLS_CA="$WORK/ca.crt" CAPSULA_CACHEDIR="$WORK/cache" \
	srun -n 2 --container-image="$REG#app:v1" cat /marker 2>"$WORK/pull.err")
is "$out" "$(printf 'from-the-registry\nfrom-the-registry')" \
	"--container-image=REGISTRY#IMAGE:TAG runs the registry's image in both tasks"
is "$(blob_gets "$WORK/reg" "$layer")" 1 "pulled once for the node's two tasks (the registry's log)"
like "$(cat "$WORK/pull.err")" "is not in the cache: pulling it" "one task says that it pulls"
is "$(grep -c "pulling it" "$WORK/pull.err")" 1 "one only"

# ------------------------------------------------------------------ errors
out=$(user_job srun -n 1 --container-image="$WORK/missing.sqfs" true 2>&1)
rc=$?
ok "a missing image fails the step" [ "$rc" != 0 ]
is "$(printf '%s\n' "$out" | grep -c '^capsula: ')" 1 "with one line of capsula's"
like "$out" "missing.sqfs" "naming the image"
out=$(user_job srun -n 1 --container-image="$IMAGE" --container-mounts=relative:/x true 2>&1)
rc=$?
ok "a malformed --container-mounts fails" [ "$rc" != 0 ]
like "$out" "capsula: --container-mounts relative:/x: relative:/x: SRC\[:DST\[:ro\|rw\]\] with absolute paths" \
	"srun says why before anything starts"

# ------------------------------------------------------------------ sbatch
cat > "$WORK/job.sh" <<EOF
#!/bin/sh
#SBATCH --container-image=$IMAGE
#SBATCH --output=$WORK/job.out
readlink /proc/self/ns/mnt
ls /bin/busybox
EOF
chmod a+rx "$WORK/job.sh"
user_job sbatch --wait "$WORK/job.sh" >/dev/null 2>&1
is "$?" 0 "sbatch with #SBATCH --container-image runs"
out=$(cat "$WORK/job.out" 2>&1)
unlike "$out" "^$host_mnt" "the batch script runs in the container"
like "$out" "/bin/busybox" "and sees the image"

# ------------------------------------------- a named container, two steps
out=$(user_job salloc -n 1 sh -c '
	srun --container-image="$1" --container-name=app --container-writable --container-remap-root \
		sh -c "echo kept > /bin/kept && chown 42:42 /bin/kept"
	srun --container-name=app --container-writable cat /bin/kept
	srun --container-name=app cat /bin/kept 2>&1 | sed "s/.*No such file.*/gone/"' \
	sh "$IMAGE" 2>&1 | grep -v -e '^s[a-z]*: ' -e '^capsula: warning: --fakeroot under a launcher')
is "$out" "$(printf 'kept\ngone')" \
	"--container-name keeps the image and, writable, its changes for the next step of the job"
n=0
while [ -e "$home/.capsula/slurm" ] && [ -n "$(ls "$home/.capsula/slurm"/*/ 2>/dev/null)" ] &&
      [ "$n" -lt 50 ]; do
	sleep 0.2
	n=$((n + 1))
done
is "$(ls "$home/.capsula/slurm"/*/ 2>/dev/null)" "" \
	"the job's end removes its named containers (also files a remapped root gave to other ids)"

# ------------------------------------- the container made ahead of the tasks
# At the step's start the plugin runs capsula --hold as the user, which
# builds the container while slurmstepd sets up the tasks; they join it
# once it says it is ready.
# The steps before leave theirs for the grace time: counted from none.
holders_after_exit >/dev/null
user_job srun -n 2 --container-image="$IMAGE" sh -c 'readlink /proc/self/ns/mnt; sleep 2' \
	> "$WORK/held.out" 2>&1 &
step=$!
n=0
until [ "$(grep -c . "$WORK/held.out")" -ge 2 ] || [ "$n" -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
held=$(ps -eo pid=,ppid=,user:32=,comm=,args= | awk -v u="$TEST_USER" \
	'$3 == u && $4 == "capsula" && index($0, "--hold") && index($0, "--job slurm:")')
ok "the step's capsula --hold runs beside its tasks" [ -n "$held" ]
is "$(ps -o comm= -p "$(printf '%s\n' "$held" | awk '{print $2; exit}')" 2>/dev/null)" slurmstepd \
	"started by slurmstepd"
held_status=/proc/$(printf '%s\n' "$held" | awk '{print $1; exit}')/status
is "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$held_status")" "$TEST_UID $TEST_UID $TEST_UID $TEST_UID" \
	"as the user wholly"
is "$(awk '/^Groups:/ {for (i = 2; i <= NF; i++) print $i}' "$held_status" | sort -n | tr '\n' ' ')" \
	"$(id -G "$TEST_USER" | tr ' ' '\n' | sort -n | tr '\n' ' ')" "with the user's groups, none of root's"
is "$(live_holders)" 1 "one container for the step, the held capsula's and the tasks'"
is "$(sort -u "$WORK/held.out" | wc -l)" 1 "both tasks run in it"
wait "$step"
n=0
while ps -eo user:32=,comm=,args= | awk -v u="$TEST_USER" '$1 == u && $2 == "capsula" && index($0, "--hold")' |
      grep -q . && [ "$n" -lt 50 ]; do
	sleep 0.1
	n=$((n + 1))
done
is "$(ps -eo user:32=,stat=,comm=,args= | awk -v u="$TEST_USER" \
	'$1 == u && $2 !~ /^Z/ && $3 == "capsula" && index($0, "--hold")' | wc -l)" 0 \
	"the step's end takes the held capsula away"
is "$(holders_after_exit)" 0 "and its container"
# The tasks join the held container themselves and exec their command in
# it: the step's one capsula is the held one.
: > "$WORK/capsula.calls"
out=$(user_job env CAPSULA_TEST_MARK=job srun -n 2 --container-image="$WORK/entry.sqfs" \
	--container-workdir=/bin sh -c 'echo "$SLURM_PROCID $(pwd) $CAPSULA_TEST_MARK"' 2>&1)
is "$(grep -c '^exec ' "$WORK/capsula.calls")" 1 "a step of two tasks runs one capsula"
is "$(grep -c -e '--hold --hold-notify 3 ' "$WORK/capsula.calls")" 1 \
	"the held one, which tells the tasks how to join"
is "$(printf '%s\n' "$out" | sort)" "$(printf '0 /bin image\n1 /bin image')" \
	"each task starts in --container-workdir with the image's variables"
# The same environment as a task's capsula exec gives (less what Slurm
# sets for each step and task).
show_env='env | grep -v -E "^(SLURM|SLURMD|PMIX|PMI|OMPI)_" | sort'
user_job srun -n 1 --container-image="$WORK/entry.sqfs" sh -c "$show_env" > "$WORK/env.1" 2>&1
user_job srun -n 2 --container-image="$WORK/entry.sqfs" \
	sh -c "if [ \$SLURM_PROCID = 0 ]; then $show_env; fi" > "$WORK/env.2" 2>&1
is "$(diff "$WORK/env.1" "$WORK/env.2")" "" "the environment capsula exec would give"
like "$(cat "$WORK/env.2")" "CAPSULA_TEST_MARK=image" "(which has the image's variables)"
out=$(user_job srun -n 2 --container-image="$IMAGE" no-such-command 2>&1)
rc=$?
is "$(printf '%s\n' "$out" | grep -c '^capsula: no-such-command: not found in the container')" 2 \
	"a command missing from the image: capsula's message in each task"
ok "and the step fails" [ "$rc" != 0 ]
holders_after_exit >/dev/null
# A lone task on the node joins it the same way: the held capsula is the
# step's one.
: > "$WORK/capsula.calls"
user_job srun -n 1 --container-image="$IMAGE" sh -c 'echo started; sleep 2' \
	> "$WORK/lone.out" 2>&1 &
step=$!
n=0
until grep -q started "$WORK/lone.out" || [ "$n" -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
is "$(live_holders)" 1 "a step's lone task runs in a container of the held capsula's making"
wait "$step"
is "$(grep -c -e '^exec .*--hold --hold-notify 3 ' "$WORK/capsula.calls")/$(grep -c '^exec ' \
	"$WORK/capsula.calls")" 1/1 "and runs no capsula of its own"
# Where capsula does more than enter and exec (root inside), the task runs
# capsula exec, and a lone one no held capsula beside it.
: > "$WORK/capsula.calls"
is "$(user_job srun -n 1 --container-image="$IMAGE" --container-remap-root id -u 2>/dev/null)" 0 \
	"--container-remap-root: root inside"
is "$(grep -c -e '--hold' "$WORK/capsula.calls")/$(grep -c '^exec ' "$WORK/capsula.calls")" 0/1 \
	"through the task's capsula exec alone"
out=$(user_job srun -n 2 --container-image="$WORK/missing.sqfs" true 2>&1)
is "$(printf '%s\n' "$out" | grep -c "missing.sqfs")" 2 \
	"a held capsula that fails says nothing: each task says it once"

# ------------------------------------------- another user's job, same image
other=capsula-test2
id "$other" >/dev/null 2>&1 ||
	with_lock sh -c "id $other >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh $other" ||
	bail_out "cannot create $other"
user_job sbatch --output="$WORK/first.out" --wrap \
	"srun --container-image=$IMAGE sh -c 'readlink /proc/self/ns/mnt; sleep 20'" >/dev/null 2>&1
n=0
until [ -s "$WORK/first.out" ] || [ "$n" -ge 100 ]; do sleep 0.2; n=$((n + 1)); done
first=$(head -n 1 "$WORK/first.out")
second=$(cd / && setpriv --reuid "$other" --regid "$other" --init-groups env -i PATH=/usr/bin:/bin \
	SLURM_CONF="$SLURM_CONF" timeout 60 srun -n 1 --container-image="$IMAGE" \
	sh -c 'id -u; readlink /proc/self/ns/mnt' 2>&1)
is "$(printf '%s\n' "$second" | sed -n 1p)" "$(id -u "$other")" "a second user's step runs as that user"
ok "in a container of its own, not the first user's running one" \
	differ_nonempty "$first" "$(printf '%s\n' "$second" | sed -n 2p)"
as_user env SLURM_CONF="$SLURM_CONF" scancel --user="$TEST_USER"
is "$(holders_after_exit)" 0 "the first user's cancelled job leaves no holder"

# Until the step's command runs in its container (its holder alone could be
# one whose rank has not joined yet).
await_command() {  # COMMAND-LINE
	n=0
	until pgrep -u "$TEST_UID" -fx "$1" >/dev/null || [ "$n" -ge 100 ]; do
		sleep 0.2
		n=$((n + 1))
	done
}

# ------------------------------------------------------ scancel mid-step
job=$(user_job sbatch --parsable --wrap "srun --container-image=$IMAGE sleep 100" \
	--output=/dev/null 2>&1)
await_command "sleep 100"
ok "a step's container runs" [ "$(live_holders)" -gt 0 ]
as_user env SLURM_CONF="$SLURM_CONF" scancel "$job"
is "$(holders_after_exit)" 0 "scancel leaves no holder (and so no mount) behind"

# A node failure, as far as the step can tell: its slurmstepd killed.
job=$(user_job sbatch --parsable --wrap "srun --container-image=$IMAGE sleep 101" \
	--output=/dev/null 2>&1)
await_command "sleep 101"
stepd=$(pgrep -f "^slurmstepd: \[$job\.0\]")
ok "the step's slurmstepd is found" [ -n "$stepd" ]
kill -9 "$stepd"
is "$(holders_after_exit)" 0 "killing slurmstepd leaves no holder behind"
as_user env SLURM_CONF="$SLURM_CONF" scancel "$job"
done_testing
