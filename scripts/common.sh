# Shared helpers of the pg_cluster scripts (sourced, not run).

PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
# The unprivileged user that runs the servers when we are root.
PGC_RUN_USER=${PGC_RUN_USER:-postgres}

# as_root runs a command as root, through sudo when we are not root.
pgc_as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# pgc_apt_install PKG...: installs those Debian packages that are missing
# (apt-get update only then).
pgc_apt_install() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "=== installing:$missing"
		pgc_as_root apt-get update -qq
		pgc_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	fi
}

# pgc_install_packages installs the Debian packages that build and test need.
pgc_install_packages() {
	# libkrb5-dev: the server headers for client authentication include
	# gssapi.h, which postgresql-server-dev does not pull in;
	# libnetfilter-queue-dev: the fault suite's packet delay (test/faults,
	# this kernel has no netem)
	pgc_apt_install build-essential "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" \
		libpq-dev libkrb5-dev libipc-run-perl spin iproute2 iptables util-linux procps \
		libnetfilter-queue-dev
}

# pgc_build_and_install builds with warnings as errors and installs.
pgc_build_and_install() {
	echo "=== building and installing pg_cluster"
	make -C "$here" -s PG_CONFIG="$PG_CONFIG" WERROR=-Werror
	pgc_as_root make -C "$here" -s PG_CONFIG="$PG_CONFIG" install
}

# pgc_runner is who runs the servers: ourselves, or postgres when root.
pgc_runner() {
	if [ "$(id -u)" = 0 ]; then echo "$PGC_RUN_USER"; else id -un; fi
}

# pgc_as_runner runs a shell command line as the runner.
pgc_as_runner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PGC_RUN_USER" -- bash -c "$1"
	else
		bash -c "$1"
	fi
}

# pgc_unprivileged_copy copies the tree to a fresh directory the runner
# owns (the servers and pg_regress write there) and prints its path.
pgc_unprivileged_copy() {
	local dir
	dir=$(mktemp -d /tmp/pg_cluster-test.XXXXXX)
	tar -C "$here" --exclude=.git --exclude=tmp_check --exclude=tmp_check_regress \
		--exclude=results --exclude=log -cf - . | tar -C "$dir" -xf -
	if [ "$(id -u)" = 0 ]; then
		chown -R "$PGC_RUN_USER" "$dir"
	fi
	echo "$dir"
}
