# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: make sure Postgres at $DATABASE_URL and
# Redis at $REDIS_URL answer. When one does not, start a throwaway local server with
# its data under .services/ (installing Debian's packages first if we are root).
# A server started by an earlier call keeps running and is simply reused.

export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

_svc_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.services"

_svc_die() { echo "services: $*" >&2; exit 1; }

# Prints "host port user dbname password" of URL $1 (default port $2). The password
# goes last because it may be empty, and `read` would shift an empty middle field.
_svc_url() {
  python3 -c 'import sys; from urllib.parse import urlsplit, unquote as q
u = urlsplit(sys.argv[1]); user = q(u.username or "postgres")
print(u.hostname or "127.0.0.1", u.port or sys.argv[2], user,
      q(u.path.lstrip("/")) or user, q(u.password or ""))' "$1" "$2"
}

# We can only start servers on this machine.
_svc_local() {
  [[ $1 == localhost || $1 == 127.* || $1 == ::1 ]] ||
    _svc_die "nothing answers at $1:$2 ($3) and it is not a local address, so no server can be started there"
}

# Installs a Debian package, or tells a non-root user what to install.
_svc_apt() {
  [[ $EUID -eq 0 ]] ||
    _svc_die "$1 is not installed: install it (apt-get install $1) or point $2 at a running server"
  echo "services: installing $1" >&2
  if [[ -z ${_svc_apt_updated:-} ]]; then
    apt-get update -qq
    _svc_apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

_svc_wait() {  # description, then a command that succeeds once the server answers
  local what=$1 i
  shift
  for ((i = 0; i < 30; i++)); do
    "$@" && return 0
    sleep 1
  done
  _svc_die "$what did not answer within 30 s"
}

# Debian keeps server binaries (initdb, pg_ctl) off PATH; prefer the newest installed.
_svc_pg_tool() {
  local dir
  dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [[ -x $dir/$1 ]]; then echo "$dir/$1"; else command -v "$1"; fi
}

_svc_pg_up() {
  local isready
  if isready=$(_svc_pg_tool pg_isready); then
    "$isready" -q -t 2 -h "$1" -p "$2"
  else  # no client binaries: a TCP connect is the best we can do
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
  fi
}

_svc_redis_up() {
  if command -v redis-cli >/dev/null; then
    [[ $(timeout 3 redis-cli -h "$1" -p "$2" ping 2>&1) == @(PONG|NOAUTH)* ]]
  else  # speak the protocol by hand; a password-protected server still answers
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"; printf "PING\r\n" >&3; read -r r <&3
      [[ $r == @(+PONG|-NOAUTH)* ]]' "$1" "$2" 2>/dev/null
  fi
}

_svc_pg_start() {
  local host=$1 port=$2 user=$3 data="$_svc_dir/postgres-$2" as=()
  if [[ -z $(_svc_pg_tool initdb) ]]; then
    _svc_apt postgresql-common DATABASE_URL
    # The packaged cluster would listen on 5432 with password auth over TCP, which
    # the password-less default URL cannot use; our own trust-auth server can.
    sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf
    _svc_apt postgresql DATABASE_URL
    _svc_pg_up "$host" "$port" && return 0
  fi

  mkdir -p "$data"
  if [[ $EUID -eq 0 ]]; then  # postgres refuses to run as root
    id postgres >/dev/null 2>&1 || _svc_die "running as root, but there is no postgres user to run Postgres as"
    chown postgres: "$data"
    runuser -u postgres -- test -w "$data" ||
      _svc_die "the postgres user cannot reach $data (a parent directory is closed to it)"
    as=(runuser -u postgres --)
  fi
  if [[ ! -s $data/PG_VERSION ]]; then
    "${as[@]}" "$(_svc_pg_tool initdb)" -D "$data" -U "$user" --auth=trust --no-locale -E UTF8 >/dev/null
    # TCP only: the default socket dir (/run/postgresql) may be missing or someone else's
    echo "unix_socket_directories = ''" >>"$data/postgresql.conf"
  fi
  echo "services: starting Postgres on $host:$port (data and log in $data)" >&2
  "${as[@]}" "$(_svc_pg_tool pg_ctl)" -D "$data" -l "$data/server.log" -o "-h $host -p $port" -w -t 30 start >/dev/null ||
    _svc_die "Postgres did not start, see $data/server.log"
  _svc_wait "Postgres at $host:$port (log: $data/server.log)" _svc_pg_up "$host" "$port"
}

_svc_postgres() {
  local url host port user db password exists
  url=$(_svc_url "$DATABASE_URL" 5432)
  read -r host port user db password <<<"$url"
  _svc_pg_up "$host" "$port" || { _svc_local "$host" "$port" DATABASE_URL; _svc_pg_start "$host" "$port" "$user"; }

  [[ -n $(_svc_pg_tool psql) ]] || _svc_apt postgresql-client DATABASE_URL
  # template1 always exists, unlike the database we are about to check for
  exists=$(PGPASSWORD=$password "$(_svc_pg_tool psql)" -X -h "$host" -p "$port" -U "$user" -d template1 \
    -tA -v ON_ERROR_STOP=1 -v db="$db" <<<"select 1 from pg_database where datname = :'db'") ||
    _svc_die "cannot query Postgres at $host:$port as $user (see the error above)"
  if [[ $exists != 1 ]]; then
    PGPASSWORD=$password "$(_svc_pg_tool createdb)" -h "$host" -p "$port" -U "$user" "$db"
  fi
}

_svc_redis() {
  local url host port dir
  # rediss:// and unix:// servers are someone else's to run; the app reports them
  [[ $REDIS_URL == redis://* ]] || return 0
  url=$(_svc_url "$REDIS_URL" 6379)
  read -r host port _ <<<"$url"
  _svc_redis_up "$host" "$port" && return 0

  _svc_local "$host" "$port" REDIS_URL
  if ! command -v redis-server >/dev/null; then
    _svc_apt redis-server REDIS_URL
    _svc_redis_up "$host" "$port" && return 0  # the package starts one on 6379
  fi
  dir="$_svc_dir/redis-$port"
  mkdir -p "$dir"
  echo "services: starting Redis on $host:$port (log in $dir)" >&2
  # redis binds addresses, not names
  redis-server --daemonize yes --bind "${host/#localhost/127.0.0.1}" --port "$port" \
    --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  _svc_wait "Redis at $host:$port (log: $dir/redis.log)" _svc_redis_up "$host" "$port"
}

_svc_postgres
_svc_redis
