#!/bin/sh
# --device VENDOR/CLASS=NAME: CDI specs the suite writes (JSON and YAML, in
# root's directory) bring a device node (a fake one, made here), a mount and
# variables; what capsula cannot do (hooks, nodes that differ from the
# host's, other mounts) is refused with the reason; specs another user
# could write are refused; the site may forbid --device.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
take_site_config "writing $CAPSULA_CONFIG_FILE and root's spec files needs root"

cdi=$(mktemp -d /tmp/capsula-cdi.XXXXXX)
SITE_LEFTOVERS=$cdi
chmod 0755 "$cdi"
mkdir "$cdi/specs" "$cdi/later" "$cdi/share"
echo vendor-data > "$cdi/share/file"
# The numbers of /dev/null: a node that works wherever it is bound.
mknod -m 0666 "$cdi/fake0" c 1 3
chmod -R go-w,a+rX "$cdi"
chmod 0666 "$cdi/fake0"
printf 'cdi spec directory = %s\ncdi spec directory = %s\n' "$cdi/specs" "$cdi/later" | write_conf

cat > "$cdi/specs/fake.json" <<EOF
{"cdiVersion": "0.6.0", "kind": "capsula.test/fake",
 "containerEdits": {"env": ["FAKE_SPEC=all-devices"]},
 "devices": [
  {"name": "one", "containerEdits": {
    "env": ["FAKE_DEVICE=one"],
    "deviceNodes": [{"path": "/dev/capsula-fake0", "hostPath": "$cdi/fake0", "type": "c",
                     "major": 1, "minor": 3}],
    "mounts": [{"hostPath": "$cdi/share", "containerPath": "/opt/vendor",
                "options": ["ro", "nosuid", "nodev", "bind"]}]}},
  {"name": "wrong-node", "containerEdits": {
    "deviceNodes": [{"path": "/dev/capsula-fake1", "hostPath": "$cdi/fake0", "major": 195,
                     "minor": 0}]}},
  {"name": "tmpfs", "containerEdits": {
    "mounts": [{"hostPath": "tmpfs", "containerPath": "/scratch", "type": "tmpfs"}]}},
  {"name": "hooked", "containerEdits": {
    "hooks": [{"hookName": "createContainer", "path": "/usr/bin/vendor-hook"}]}}
 ]}
EOF
cat > "$cdi/specs/gpu.yaml" <<EOF
# as a vendor's generator writes them
cdiVersion: "0.5.0"
kind: capsula.test/yaml
devices:
  - name: "0"
    containerEdits:
      env:
        - YAML_DEVICE=0
      deviceNodes:
        - path: /dev/capsula-yaml0
          hostPath: $cdi/fake0
          major: 1
          minor: 3
  - name: twice
    containerEdits:
      env: [FROM=specs]
EOF
cat > "$cdi/later/override.yml" <<EOF
cdiVersion: 0.6.0
kind: capsula.test/yaml
devices:
  - name: twice
    containerEdits:
      env: [FROM=later]
EOF
chmod a+r "$cdi"/*/*

# ------------------------------------------------------------- what it brings
out=$(capsula_exec --join never --device capsula.test/fake=one -- sh -c \
	'stat -c "%F %t:%T" /dev/capsula-fake0; echo written > /dev/capsula-fake0 && echo wrote
	 cat /opt/vendor/file; touch /opt/vendor/new 2>&1; echo "$FAKE_DEVICE $FAKE_SPEC"' 2>&1)
is "$(printf '%s\n' "$out" | sed -n 1p)" "character special file 1:3" \
	"a JSON spec's device node is in the container, the host's numbers"
is "$(printf '%s\n' "$out" | sed -n 2p)" wrote "and works"
is "$(printf '%s\n' "$out" | sed -n 3p)" vendor-data "its mount brings the host's directory"
like "$(printf '%s\n' "$out" | sed -n 4p)" "Read-only file system" "read-only, as its options say"
is "$(printf '%s\n' "$out" | sed -n 5p)" "one all-devices" \
	"the device's variables and the spec's own are set"
out=$(capsula_exec --join never --device capsula.test/yaml=0 -- sh -c \
	'stat -c "%F %t:%T" /dev/capsula-yaml0; echo "$YAML_DEVICE"' 2>&1)
is "$out" "$(printf 'character special file 1:3\n0')" \
	"a YAML spec works the same (a quoted name, a list of variables)"
out=$(capsula_exec --join never --device capsula.test/yaml=0 --device capsula.test/fake=one -- \
	sh -c 'ls /dev/capsula-yaml0 /dev/capsula-fake0' 2>&1)
is "$out" "$(printf '/dev/capsula-fake0\n/dev/capsula-yaml0')" "two devices of two specs at once"
out=$(capsula_exec --join never --device capsula.test/yaml=twice -- sh -c 'echo "$FROM"' 2>&1)
is "$out" later "a device defined in two directories comes from the later one"
out=$(capsula_exec --join never -- sh -c 'ls /dev/capsula-fake0 2>&1; echo "${FAKE_DEVICE:-unset}"' |
	tr '\n' ' ')
like "$out" "No such file or directory unset" "without --device nothing of it is there"
plain=$(capsula_exec --dry-run -- true | grep '^join')
with=$(capsula_exec --dry-run --device capsula.test/fake=one -- true | grep '^join')
ok "devices are part of the join key" differ_nonempty "$plain" "$with"

# ------------------------------------------------------------ refused, with why
refused() {  # DEVICE EXTENDED-REGEX DESCRIPTION
	err=$(capsula_exec --join never --device "$1" -- true 2>&1)
	is "$?" 125 "$3: status 125"
	like "$err" "$2" "$3"
}
refused capsula.test/fake=hooked \
	"^capsula: --device capsula.test/fake=hooked: CDI spec $cdi/specs/fake.json: it has hooks \(createContainer: /usr/bin/vendor-hook\), and capsula runs none; ask the administrator for a spec without hooks" \
	"a spec with hooks is refused, naming the hook"
refused capsula.test/fake=wrong-node \
	"fake0 is device 1:3 on this host, not the spec's 195:0" \
	"a node that is not the spec's numbers is refused (capsula cannot make one)"
refused capsula.test/fake=tmpfs "a mount of type 'tmpfs': capsula makes binds only" \
	"a mount that is no bind is refused"
refused capsula.test/fake=two \
	"no such CDI device here \(there are: capsula.test/fake=one, capsula.test/fake=wrong-node" \
	"an unknown name of a known kind lists the known ones"
refused example.com/none=0 "example.com/none=0: no CDI spec on this node defines it" \
	"an unknown kind says so"
refused nvidia.com/gpu "not VENDOR/CLASS=NAME" "a name without =NAME is refused"
refused "nvidia.com/g pu=0" "a malformed CDI device name" "a name against CDI's rules is refused"

# --------------------------------------------- specs another user could change
cp "$cdi/specs/gpu.yaml" "$cdi/later/planted.yaml"
chown "$TEST_UID" "$cdi/later/planted.yaml"
refused capsula.test/yaml=0 "CDI spec $cdi/later/planted.yaml is not root's or others may write it" \
	"a spec file of a user's in the directory is refused"
rm "$cdi/later/planted.yaml"
cp "$cdi/specs/gpu.yaml" "$cdi/later/open.yaml"
chmod 0666 "$cdi/later/open.yaml"
refused capsula.test/yaml=0 "open.yaml is not root's or others may write it" \
	"a spec file others may write is refused"
rm "$cdi/later/open.yaml"
as_user mkdir "$WORK/specs"
as_user cp "$cdi/specs/fake.json" "$WORK/specs/"
printf 'cdi spec directory = %s\n' "$WORK/specs" | write_conf
refused capsula.test/fake=one "CDI spec directory $WORK/specs: .*another user could replace what is below it" \
	"a spec directory of a user's is refused"
printf 'cdi spec directory = %s\n' "$cdi/specs" | write_conf
sed 's/"one"/"other"/' "$cdi/specs/fake.json" > "$cdi/specs/copy.json"
chmod 0644 "$cdi/specs/copy.json"
refused capsula.test/fake=wrong-node "both $cdi/specs/copy.json and $cdi/specs/fake.json define it" \
	"one device defined by two specs of one directory is refused"
rm "$cdi/specs/copy.json"

# ----------------------------------------------------------------- site policy
printf 'cdi spec directory = %s\nallow cdi devices = no\n' "$cdi/specs" | write_conf
refused capsula.test/fake=one "CDI devices are not allowed here \($CAPSULA_CONFIG_FILE: allow cdi devices = no\)" \
	"the site can forbid --device"
printf 'cdi spec directory = %s\n' "$cdi/missing" | write_conf
refused capsula.test/fake=one "no CDI spec on this node defines it" \
	"a spec directory that does not exist holds no devices"
done_testing
