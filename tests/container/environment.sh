#!/bin/sh
# The command's environment and start directory.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

env_inside() { capsula_exec "$@" -- env; }

out=$(as_user FOO=bar OMPI_COMM_WORLD_RANK=5 LD_LIBRARY_PATH=/host/lib PATH=/host/bin:/usr/bin:/bin \
	"$CAPSULA" exec "$IMAGE" env)
like "$out" '^FOO=bar$' "host variables pass through"
like "$out" '^OMPI_COMM_WORLD_RANK=5$' "MPI variables pass through"
unlike "$out" '^LD_LIBRARY_PATH=' "the host's LD_LIBRARY_PATH stays outside"
like "$out" '^PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin$' "PATH is the image's"
like "$out" "^CAPSULA_CONTAINER=$IMAGE\$" "CAPSULA_CONTAINER names the image"
like "$out" "^APPTAINER_NAME=$(basename "$IMAGE")\$" "APPTAINER_NAME is the image's file name, as Apptainer sets it"

out=$(env_inside --env PATH=/opt/bin:/bin --env LD_LIBRARY_PATH=/opt/lib --env A=1)
like "$out" '^PATH=/opt/bin:/bin$' "--env sets PATH"
like "$out" '^LD_LIBRARY_PATH=/opt/lib$' "--env sets LD_LIBRARY_PATH"
like "$out" '^A=1$' "--env adds a variable"

out=$(as_user FOO=bar TERM=vt100 "$CAPSULA" exec --cleanenv "$IMAGE" env)
unlike "$out" '^FOO=' "--cleanenv drops host variables"
like "$out" '^TERM=vt100$' "--cleanenv keeps TERM"

printf 'export FROM_FILE="a b"\n# comment\nOTHER=2\n' > "$WORK/vars"
chmod a+r "$WORK/vars"
out=$(env_inside --env-file "$WORK/vars")
like "$out" '^FROM_FILE=a b$' "--env-file sets quoted values"
like "$out" '^OTHER=2$' "--env-file sets every line"

is "$(capsula_exec --pwd /etc -- pwd)" /etc "--pwd sets the start directory"
err=$(capsula_exec --pwd /nonexistent -- pwd 2>&1)
like "$err" "warning: /nonexistent does not exist in the container; starting in $TEST_HOME" \
	"a start directory missing inside falls back to home, with a warning"
is "$(capsula_exec -q --pwd /nonexistent -- pwd 2>&1)" "$TEST_HOME" "-q silences that warning"

out=$(capsula_exec --join never -v -- true 2>&1)
like "$out" 'capsula: +user\+mount namespaces +[0-9]+ us' "-v reports the time of each launch phase"
like "$out" 'capsula: container ready +[0-9]+ us' "-v reports the total"

done_testing
