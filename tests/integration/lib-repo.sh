# Sourced by tests after lib.sh: serving rpm-md repositories over http from a private nginx.
#
#   url=$(repo_serve DIR)   serves DIR on 127.0.0.1 (a free port) and prints the base URL;
#                           every server is stopped when the test exits.
#   Under the same URL, for fault tests:
#     $url/to-file/PATH     302 to file://DIR/PATH (a redirect to another scheme)
#     $url/to-http/PATH     302 to $url/PATH (a redirect within the scheme)
#     $url/error500/PATH    HTTP 500 (a transient server error)
#   Faults in the content itself: edit files in DIR (copy it with cp -al first, and replace
#   files instead of writing into them: the cached repositories are hardlinked).
#   url=$(repo_serve_tls DIR)  the same over https (a self-signed certificate for 127.0.0.1;
#                           its path: $(repo_server_cert URL)); $url/to-http/PATH redirects
#                           to the plain-http server of the same DIR, printed by
#                           repo_server_plain URL.
#   repo_server_stop URL    stops the server of URL (to test "server down").
#   repo_file_url DIR       prints file://DIR

_REPO_SERVERS=$(mktmp)
trap '_repo_stop_all; _cleanup' EXIT

_repo_stop_all() {
	local p
	for p in "$_REPO_SERVERS"/*/nginx.pid; do
		[ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null
	done
	return 0
}

repo_file_url() { echo "file://$(cd "$1" && pwd)"; }

repo_serve_tls() { REPO_TLS=1 repo_serve "$@"; }

_repo_port() { local p=${1##*:}; echo "${p%%/*}"; }
repo_server_cert() { echo "$_REPO_SERVERS/$(_repo_port "$1")/cert.pem"; }
repo_server_plain() { echo "http://127.0.0.1:$(cat "$_REPO_SERVERS/$(_repo_port "$1")/plain-port")"; }

repo_serve() { # DIR
	local dir port try d tls=${REPO_TLS:-} listen scheme=http plain=""
	dir=$(cd "$1" && pwd) || return 1
	command -v nginx >/dev/null || { echo "repo_serve: nginx not installed" >&2; return 1; }
	for try in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 40000))
		d=$_REPO_SERVERS/$port
		mkdir "$d" 2>/dev/null || continue
		mkdir -p "$d/tmp"
		listen="listen 127.0.0.1:$port;"
		if [ -n "$tls" ]; then
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout "$d/key.pem" -out "$d/cert.pem" -days 2 -subj /CN=127.0.0.1 \
				-addext subjectAltName=IP:127.0.0.1 2>"$d/openssl.log" || {
				cat "$d/openssl.log" >&2
				return 1
			}
			plain=$((port + 1))
			echo "$plain" >"$d/plain-port"
			listen="listen 127.0.0.1:$port ssl; ssl_certificate $d/cert.pem; ssl_certificate_key $d/key.pem; listen 127.0.0.1:$plain;"
			scheme=https
		fi
		cat >"$d/nginx.conf" <<CONF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 64; }
http {
	access_log $d/access.log;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	types { application/xml xml; application/octet-stream rpm gz zst; }
	default_type application/octet-stream;
	server {
		$listen
		root $dir;
		location ~ ^/to-file/(.*)\$ { return 302 file://$dir/\$1; }
		location ~ ^/to-http/(.*)\$ { return 302 http://127.0.0.1:${plain:-$port}/\$1; }
		location ~ ^/error500/ { return 500; }
	}
}
CONF
		if nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" 2>"$d/start.log"; then
			# wait until it answers
			local i
			for i in $(seq 50); do
				(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
				sleep 0.05
			done
			echo "$scheme://127.0.0.1:$port"
			return 0
		fi
		grep -q "in use" "$d/start.log" "$d/error.log" 2>/dev/null || {
			cat "$d/start.log" >&2
			return 1
		}
	done
	echo "repo_serve: no free port" >&2
	return 1
}

repo_server_stop() { # URL
	local port
	port=$(_repo_port "$1")
	local p=$_REPO_SERVERS/$port/nginx.pid
	[ -f "$p" ] || return 0
	kill "$(cat "$p")" 2>/dev/null
	local i
	for i in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
		sleep 0.05
	done
}
