# Sourced by test-repo*.sh after lib.sh and lib-repo.sh: helpers for repository tests.

# A writable copy of the cached full-54 KMP repository: package files and metadata
# hardlinked (replace files, never write into them).
repo_copy() { # dest
	local src
	src=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD") || return 1
	cp -al "$src" "$1"
}

# Every file of kmodd's state and cache under a root, with its sha256.
state_snapshot() { # root
	(cd "$1" && find etc/kmodd var/lib/kmodd var/cache/kmodd -type f 2>/dev/null | sort |
		xargs -r sha256sum)
}

# repo_add_conf ROOT ID URL [extra lines...]: writes ROOT/etc/kmodd/repos.d/ID.repo
repo_add_conf() {
	local root=$1 id=$2 url=$3
	shift 3
	mkdir -p "$root/etc/kmodd/repos.d"
	{
		echo "[$id]"
		echo "name=$id"
		echo "baseurl=$url"
		echo "enabled=1"
		printf '%s\n' "$@"
	} >"$root/etc/kmodd/repos.d/$id.repo"
}

# refresh_fails NAME ROOT WANT [refresh args...]: the refresh fails with exit 1, one line
# on stderr containing WANT, and the state and cache are as before.
refresh_fails() {
	local name=$1 root=$2 want=$3 before after out rc lines
	shift 3
	before=$(state_snapshot "$root")
	out=$("$KMODCTL" --root "$root" repo refresh "$@" 2>&1 >/dev/null)
	rc=$?
	after=$(state_snapshot "$root")
	lines=$(printf '%s\n' "$out" | grep -c .)
	if crashed "$rc" "$out"; then
		fail "$name" "crashed ($rc): $out"
	elif [ "$rc" -ne 1 ]; then
		fail "$name" "exit $rc, expected 1: $out"
	elif [ "$lines" -ne 1 ]; then
		fail "$name" "$lines lines of error output, expected one: $(tr '\n' '|' <<<"$out")"
	elif [[ "$out" != *"$want"* ]]; then
		fail "$name" "error does not mention '$want': $out"
	elif [ "$before" != "$after" ]; then
		fail "$name" "state or cache changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
	else
		pass "$name"
		[ -n "${VERBOSE:-}" ] && echo "# $name: $out"
	fi
	return 0
}

# Replaces a file by a modified copy (the original inode, shared with the cache, stays).
replace_with() { # file cmd... (cmd reads the original on stdin, writes the new content)
	local f=$1
	shift
	"$@" <"$f" >"$f.new" && mv "$f.new" "$f"
}

primary_of() { # repo dir
	ls "$1"/repodata/*-primary.xml.gz
}
