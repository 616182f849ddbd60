#!/usr/bin/env bash
# Repositories over https (nginx with a throwaway self-signed certificate): refused without
# the CA, accepted with sslcacert=, and a redirect from https to http refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-repo-test.sh"

T=$(mktmp)
command -v openssl >/dev/null || { skip all "openssl missing"; finish; }
src=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>"$T/err") || {
	fail setup "no cached repository: $(tail -n 3 "$T/err" | tr '\n' ' ')"
	finish
}
mkdir -p "$T/srv"
cp -al "$src/repodata" "$T/srv/"
url=$(repo_serve_tls "$T/srv") || { fail setup "nginx with TLS did not start"; finish; }
cert=$(repo_server_cert "$url")

mkdir -p "$T/r1"
repo_add_conf "$T/r1" kmp "$url" gpgcheck=0
refresh_fails https-unknown-ca "$T/r1" "$url/repodata/repomd.xml: TLS certificate not trusted"

mkdir -p "$T/r2"
out=$("$KMODCTL" --root "$T/r2" repo add kmp "$url" --no-gpgcheck --sslcacert "$cert" 2>&1)
if out=$("$KMODCTL" --root "$T/r2" repo refresh 2>&1) && [[ "$out" == "Repository 'kmp': "*" packages"* ]]; then
	pass https-with-sslcacert
else
	fail https-with-sslcacert "$out"
fi
if "$KMODCTL" --root "$T/r2" repo list --json | grep -q "\"sslcacert\":\"$cert\""; then
	pass sslcacert-listed
else
	fail sslcacert-listed "$("$KMODCTL" --root "$T/r2" repo list --json 2>&1)"
fi

mkdir -p "$T/r3"
repo_add_conf "$T/r3" kmp "$url/to-http" gpgcheck=0 "sslcacert=$cert"
refresh_fails https-to-http-redirect "$T/r3" "$url/to-http/repodata/repomd.xml: redirect to another scheme refused"
# the plain server it redirects to does serve the repository
plain=$(repo_server_plain "$url")
if curl -sf -o /dev/null "$plain/repodata/repomd.xml"; then pass plain-target-exists; else fail plain-target-exists "$plain"; fi
finish
