#!/usr/bin/env bash
# Builds the Debian package as the README says, installs it on this machine, and checks
# what an operator would: the files, the user, the data directory; the binary started as
# that user with that config answers /ping; `dpkg -r` keeps the data; `dpkg --purge` does
# not. Needs root (dpkg) and cargo-deb (`cargo install cargo-deb`). Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "check-install: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W shardkeeper >/dev/null 2>&1; then
    fail "a shardkeeper package is installed already; this check installs and purges its own"
fi

echo "== cargo deb --profile dist"
cargo deb --profile dist
deb=$(ls -t target/debian/shardkeeper_*.deb | head -1)
echo "built $deb"

echo "== dpkg -i"
# No systemd runs here (a container): the unit is installed and enabled, not started.
dpkg -i "$deb"
test -x /usr/bin/shardkeeper || fail "no /usr/bin/shardkeeper"
unit=$(dpkg -L shardkeeper | grep '/systemd/system/shardkeeper.service$') || fail "no unit"
cmp "$unit" deploy/shardkeeper.service || fail "the installed unit is not deploy/shardkeeper.service"
cmp /etc/shardkeeper/shardkeeper.toml deploy/debian/shardkeeper.toml || fail "config differs"
dpkg-query -W -f='${Conffiles}\n' shardkeeper | grep -q '/etc/shardkeeper/shardkeeper.toml' \
    || fail "the config is not a conffile"
getent passwd shardkeeper >/dev/null || fail "no shardkeeper user"
[ "$(stat -c %U:%G /var/lib/shardkeeper)" = shardkeeper:shardkeeper ] || fail "data dir owner"
[ "$(stat -c %G /etc/shardkeeper/shardkeeper.toml)" = shardkeeper ] || fail "config group"
/usr/bin/shardkeeper --help | grep -q serve || fail "--help"

# Starts the installed binary as the shardkeeper user with the packaged config; sets pid
# and url. Port 0 rather than the packaged 8086, which a CI machine may have in use.
# setpriv execs the node itself (runuser would stay its parent and report the SIGTERM).
out=$(mktemp)
start_node() {
    setpriv --reuid=shardkeeper --regid=shardkeeper --clear-groups \
        /usr/bin/shardkeeper serve --config /etc/shardkeeper/shardkeeper.toml \
        --bind 127.0.0.1:0 >"$out" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        grep -q 'listening on' "$out" && break
        kill -0 "$pid" 2>/dev/null || { cat "$out"; fail "the node exited"; }
        sleep 0.1
    done
    url=$(grep -o 'http://[0-9.:]*' "$out" | head -1)
    [ -n "$url" ] || { cat "$out"; fail "the node did not say where it listens"; }
    [ "$(ps -o user= -p "$pid")" = shardkeeper ] || fail "the node does not run as shardkeeper"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ping")" = 204 ] || fail "/ping"
}
stop_node() {
    kill -TERM "$pid"
    wait "$pid" || fail "the node did not stop cleanly"
}
stored_points() {
    curl -fsS -G "$url/query" --data-urlencode 'db=packaged' \
        --data-urlencode 'q=SELECT count(v) FROM cpu' | grep -o '"values":\[\[[^]]*\]\]'
}

echo "== shardkeeper serve as the shardkeeper user with the packaged config"
start_node
curl -fsS -XPOST "$url/query" --data-urlencode 'q=CREATE DATABASE packaged' >/dev/null
curl -fsS -XPOST "$url/write?db=packaged" --data-binary 'cpu v=1 1000000000' || fail "write"
before=$(stored_points) || fail "the point written is not answered"
stop_node
[ "$(stat -c %U /var/lib/shardkeeper/control)" = shardkeeper ] || fail "data not the user's"

echo "== upgrade: a newer package over it keeps the data, the user and the edited config"
echo "# edited by the operator" >>/etc/shardkeeper/shardkeeper.toml
cargo deb --profile dist --no-build --deb-version 0.1.0-upgrade1
newer=$(ls target/debian/shardkeeper_0.1.0-upgrade1_*.deb)
dpkg -i --force-confold "$newer"
[ "$(dpkg-query -W -f='${Version}' shardkeeper)" = 0.1.0-upgrade1 ] || fail "not upgraded"
tail -1 /etc/shardkeeper/shardkeeper.toml | grep -q 'edited by the operator' \
    || fail "the upgrade replaced the operator's config"
getent passwd shardkeeper >/dev/null || fail "the upgrade removed the user"
start_node
[ "$(stored_points)" = "$before" ] || fail "the upgraded node lost data: $(stored_points)"
stop_node
rm -f "$newer"

echo "== dpkg -r keeps the data directory"
dpkg -r shardkeeper
[ ! -e /usr/bin/shardkeeper ] || fail "binary left behind"
[ -d /var/lib/shardkeeper/control ] || fail "dpkg -r removed the data"
getent passwd shardkeeper >/dev/null || fail "dpkg -r removed the user"

echo "== dpkg --purge removes it"
dpkg --purge shardkeeper
[ ! -e /var/lib/shardkeeper ] || fail "purge kept the data"
! getent passwd shardkeeper >/dev/null || fail "purge kept the user"
rm -f "$out"
echo "check-install: ok"
