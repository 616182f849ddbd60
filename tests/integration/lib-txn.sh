# Sourced by the transaction tests (test-txn*.sh) after lib.sh.
# Provides: $TXN_TOOL, $REPO (the cached full-54 KMP repository), $PKGS (its x86_64/),
# txn_root DEST (a base-54 root the tests may change), run_shim ROOT CMD... (with the
# LD_PRELOAD shim faking module loads under ROOT), state_of ROOT (a fingerprint of the module
# tree, its indexes and the installed packages), indexes_like_depmod ROOT (the indexes equal
# what kmod's depmod writes for the tree).

TXN_TOOL=${TXN_TOOL:-$BUILD/tests/integration/txn-tool}
KVER=$KVER54
[ -x "$TXN_TOOL" ] || { echo "FAIL $TEST_NAME:setup: $TXN_TOOL not built"; exit 1; }
REPO=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD") ||
	{ echo "FAIL $TEST_NAME:setup: no KMP repository (kmpbuild/cached-repo.sh full-54)"; exit 1; }
PKGS=$REPO/x86_64
pkg() { ls "$PKGS/$1"-kmp-amd64-*.rpm | head -n 1; }

INDEXES=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
	modules.symbols modules.symbols.bin modules.devname)

# The module tree of the base root (what transactions touch; boot/ and the headers are not
# needed), real copies: the tests write in place.
txn_root() { mkdir -p "$1/lib" && cp -a "$FIXTURES/base-54/lib/." "$1/lib/"; }

run_shim() { # root cmd...
	local root=$1
	shift
	LD_PRELOAD=$SHIM KMODD_SHIM_ROOT=$root "$@"
}

# Module tree (every file and directory, with content hashes; the incremental depmod's own
# files, its cache, spares and journal, excluded) and the installed packages.
state_of() { # root
	(
		cd "$1" || exit 1
		find "lib/modules/$KVER" -path "*/build" -prune -o -type d -print | sort
		find "lib/modules/$KVER" -path "*/build" -prune -o -type f ! -name .kmodd-depmod.cache \
			! -name '.kmodd-spare.*' ! -name .kmodd-depmod.journal \
			-exec sha256sum {} + | sort -k 2
		"$KMODCTL" --root "$1" list --installed --json 2>/dev/null |
			grep -E '^    "(name|evr)"' | tr -d ' \n'
		echo
	) | sha256sum | cut -c1-16
}

indexes_like_depmod() { # root
	local s f bad=
	s=$(mktemp -d "${TMPDIR:-/tmp}/kmodd-depmod-ref.XXXXXX")
	mkdir -p "$s/lib/modules"
	cp -a "$1/lib/modules/$KVER" "$s/lib/modules/"
	depmod -b "$s" "$KVER" || { rm -rf "$s"; return 1; }
	for f in "${INDEXES[@]}"; do
		cmp -s "$1/lib/modules/$KVER/$f" "$s/lib/modules/$KVER/$f" || bad="$bad $f"
	done
	rm -rf "$s"
	[ -z "$bad" ] || { echo "indexes differ from depmod's:$bad"; return 1; }
}
