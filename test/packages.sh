# test/packages.sh — sourced by the scripts that set up a fresh Debian 12
# machine (test/run-tests.sh, test/check-assert.sh, test/fuzz/run.sh).
#
# sk_install_packages PACKAGE...: install the Debian packages that are
# missing.  As root with apt-get (no prompt, no standard input, no
# recommends); as another user, print the command to run and exit 1.  The
# caller defines say() for its messages.

sk_install_packages() {
	local p missing=()
	for p in "$@"; do
		if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "all $# packages are installed"
		return 0
	fi
	if [ "$(id -u)" -eq 0 ]; then
		say "installing: ${missing[*]}"
		apt-get update </dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
	else
		say "missing packages; install them with:" >&2
		echo "sudo apt-get install -y ${missing[*]}"
		exit 1
	fi
}
