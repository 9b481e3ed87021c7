# Sourced by scripts/run and scripts/test: make sure PostgreSQL and NATS JetStream run on
# 127.0.0.1, installing them from Debian's packages when they are missing. Idempotent.

pg_url_base="postgres://postgres@127.0.0.1:5432"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "installing PostgreSQL from Debian's packages"
        apt_install postgresql postgresql-client
        # A fresh cluster only lets local users in by password; a development machine
        # connects over loopback as `postgres` without one, as DATABASE_URL says.
        for hba in /etc/postgresql/*/main/pg_hba.conf; do
            grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" ||
                as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
        done
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "starting PostgreSQL"
        for version in $(ls /etc/postgresql); do
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
        for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
    fi
    pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; return 1; }
    psql "$pg_url_base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'dropship'" | grep -q 1 ||
        psql "$pg_url_base/postgres" -qc "CREATE DATABASE dropship"
}

ensure_nats() {
    if port_open 4222; then return 0; fi
    if [ ! -x /usr/sbin/nats-server ]; then
        echo "installing nats-server from Debian's packages"
        apt_install nats-server
    fi
    echo "starting nats-server with JetStream"
    as_root mkdir -p /var/lib/nats-server
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 1 50); do port_open 4222 && return 0; sleep 0.2; done
    echo "nats-server did not start on 127.0.0.1:4222" >&2
    return 1
}
