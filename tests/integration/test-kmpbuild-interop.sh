#!/usr/bin/env bash
# Other tools read kmpbuild repositories: createrepo_c (--update, and a fresh run agreeing
# with our primary.xml), dnf repoquery and zypper search over file:// and over http from
# nginx on 127.0.0.1, gpg verifying repomd.xml.asc.
source "$(dirname "$0")/lib.sh"

T=$(mktmp)
if ! repo=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>"$T/err"); then
	fail build "$(tail -n 3 "$T/err" | tr '\n' ' ')"
	finish
fi
want=$(cd "$repo/x86_64" && ls e1000-kmp-amd64-*.rpm)
want=${want%.rpm}

# createrepo_c --update on a copy (package files hardlinked, metadata copied)
mkdir "$T/upd"
cp -al "$repo/x86_64" "$T/upd/"
cp -a "$repo/repodata" "$T/upd/"
if out=$(createrepo_c --update "$T/upd" 2>&1); then
	n=$(zcat "$T"/upd/repodata/*-primary.xml.gz | grep -c '<package type="rpm">')
	if [ "$n" -eq "$(ls "$repo/x86_64" | wc -l)" ]; then
		pass "createrepo_c-update($n)"
	else
		fail createrepo_c-update "$n packages in its primary.xml"
	fi
else
	fail createrepo_c-update "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

# a fresh createrepo_c over three of our packages writes the same primary entries
mkdir -p "$T/fresh/x86_64"
for p in e1000-kmp-amd64 kernel-amd64 snd-hda-intel-kmp-amd64; do
	ln "$repo"/x86_64/$p-[0-9]*.rpm "$T/fresh/x86_64/"
done
entries() { # primary.xml.gz name
	zcat "$1" | awk -v n="  <name>$2</name>" '
		/^<package type="rpm">/ { k = 0; keep = 0 }
		{ line[k++] = $0 }
		$0 == n { keep = 1 }
		/^<\/package>/ && keep { for (i = 0; i < k; i++) print line[i]; keep = 0 }' |
		grep -v '<time '
}
if createrepo_c -q "$T/fresh" >/dev/null 2>&1; then
	bad=
	for p in e1000-kmp-amd64 kernel-amd64 snd-hda-intel-kmp-amd64; do
		entries "$repo"/repodata/*-primary.xml.gz $p >"$T/ours"
		entries "$T"/fresh/repodata/*-primary.xml.gz $p >"$T/theirs"
		[ -s "$T/ours" ] && cmp -s "$T/ours" "$T/theirs" || bad="$bad $p"
	done
	if [ -z "$bad" ]; then
		pass createrepo_c-agrees
	else
		fail createrepo_c-agrees "primary entries differ for$bad"
	fi
else
	fail createrepo_c-agrees "createrepo_c failed on the packages"
fi

dnf_query() { # baseurl
	local d
	d=$(mktemp -d "$T/dnf.XXXXXX")
	mkdir -p "$d/root" "$d/repos.d"
	dnf -q --installroot="$d/root" --setopt=reposdir="$d/repos.d" --setopt=cachedir="$d/cache" \
		--repofrompath=kmp,"$1" --repo=kmp --nogpgcheck --releasever=12 \
		repoquery --whatprovides 'kmod(e1000.ko)' 2>&1
}
zypper_search() { # baseurl
	local d
	d=$(mktemp -d "$T/zypp.XXXXXX")
	zypper -n --root "$d" addrepo --no-gpgcheck "$1" kmp >/dev/null 2>&1 &&
		zypper -n --root "$d" refresh >/dev/null 2>&1 &&
		zypper -n --root "$d" search --provides 'kmod(e1000.ko)' 2>&1
}

out=$(dnf_query "file://$repo")
if grep -qx "e1000-kmp-amd64-0:${want#e1000-kmp-amd64-}" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then
	pass dnf-file
else
	fail dnf-file "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi
out=$(zypper_search "file://$repo")
if grep -q '| e1000-kmp-amd64 ' <<<"$out" && [ "$(grep -c -- '-kmp-' <<<"$out")" -eq 1 ]; then
	pass zypper-file
else
	fail zypper-file "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

# over http: nginx on 127.0.0.1 serving the repository
port=$((20000 + RANDOM % 20000))
mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
$([ "$(id -u)" -eq 0 ] && echo "user root;")
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	types { application/x-rpm rpm; application/xml xml; application/gzip gz; }
	server {
		listen 127.0.0.1:$port;
		root $repo;
	}
}
EOF
nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" 2>"$T/nginx/start.err" &
nginx_pid=$!
for _ in $(seq 50); do
	curl -sf -o /dev/null "http://127.0.0.1:$port/repodata/repomd.xml" && break
	sleep 0.1
done
if curl -sf -o /dev/null "http://127.0.0.1:$port/repodata/repomd.xml"; then
	out=$(dnf_query "http://127.0.0.1:$port/")
	if grep -qx "e1000-kmp-amd64-0:${want#e1000-kmp-amd64-}" <<<"$out"; then
		pass dnf-http
	else
		fail dnf-http "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
	fi
	out=$(zypper_search "http://127.0.0.1:$port/")
	if grep -q '| e1000-kmp-amd64 ' <<<"$out"; then
		pass zypper-http
	else
		fail zypper-http "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
	fi
	# a package fetched over http still verifies
	if curl -sf -o "$T/e1000.rpm" "http://127.0.0.1:$port/x86_64/$want.rpm" &&
		rpm -K "$T/e1000.rpm" | grep -q 'digests OK'; then
		pass http-package-verifies
	else
		fail http-package-verifies "download or rpm -K failed"
	fi
else
	fail nginx "not serving on 127.0.0.1:$port: $(tail -n 2 "$T/nginx/start.err" "$T/nginx/error.log" 2>/dev/null | tr '\n' ' ')"
fi
kill "$nginx_pid" 2>/dev/null
wait "$nginx_pid" 2>/dev/null

# rpm itself installs the packages: the base package, then ixgbe, which needs five KMPs
R=$T/rpmroot
mkdir -p "$R"
x=$repo/x86_64
kmps() { local m; for m in "$@"; do ls "$x/$m-kmp-amd64-"[0-9]*.rpm; done; }
if rpm --root "$R" -i --nosignature "$x"/kernel-amd64-[0-9]*.rpm >"$T/rpm.out" 2>&1; then
	pass rpm-install-base
else
	fail rpm-install-base "$(tail -n 2 "$T/rpm.out" | tr '\n' ' ')"
fi
if rpm --root "$R" -i --nosignature $(kmps ixgbe) >"$T/rpm.out" 2>&1; then
	fail rpm-install-needs-deps "ixgbe installed without the KMPs it depends on"
elif grep -q 'dca-kmp-amd64 is needed' "$T/rpm.out" && grep -q 'ksym(amd64:dca_' "$T/rpm.out"; then
	pass rpm-install-needs-deps
else
	fail rpm-install-needs-deps "$(head -n 3 "$T/rpm.out" | tr '\n' ' ')"
fi
if rpm --root "$R" -i --nosignature $(kmps ixgbe dca libphy mdio mdio_devres xfrm_algo) \
	>"$T/rpm.out" 2>&1 && rpm --root "$R" -V -a >>"$T/rpm.out" 2>&1 &&
	cmp -s "$R/lib/modules/$KVER54/updates/drivers/net/ethernet/intel/ixgbe/ixgbe.ko" \
		"$FIXTURES/full-54/lib/modules/$KVER54/kernel/drivers/net/ethernet/intel/ixgbe/ixgbe.ko"; then
	pass rpm-install-kmps
else
	fail rpm-install-kmps "$(tail -n 3 "$T/rpm.out" | tr '\n' ' ')"
fi

# repomd.xml.asc: a small tree (base-54, every module a KMP) signed with a throwaway key
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
if gpg --batch --passphrase '' --quick-gen-key 'kmodd test <test@kmodd.invalid>' ed25519 sign never \
	>/dev/null 2>&1; then
	: >"$T/empty.list"
	if out=$("$KMPBUILD" --root "$FIXTURES/base-54" --kernel "$KVER54" --base "$T/empty.list" \
		--out "$T/signed" --sign-key test@kmodd.invalid --gpg-homedir "$GNUPGHOME" -q 2>&1) &&
		gpg --batch --verify "$T/signed/repodata/repomd.xml.asc" "$T/signed/repodata/repomd.xml" \
			>/dev/null 2>&1; then
		pass repomd-signature
	else
		fail repomd-signature "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
	fi
	# the signature covers repomd.xml: a changed byte fails verification
	cp "$T/signed/repodata/repomd.xml" "$T/repomd.xml"
	sed -i 's/<revision>/<revision>1/' "$T/repomd.xml"
	if gpg --batch --verify "$T/signed/repodata/repomd.xml.asc" "$T/repomd.xml" >/dev/null 2>&1; then
		fail repomd-signature-binds "a modified repomd.xml verified"
	else
		pass repomd-signature-binds
	fi
else
	skip repomd-signature "gpg cannot generate a key here"
fi
gpgconf --homedir "$GNUPGHOME" --kill gpg-agent >/dev/null 2>&1

finish
