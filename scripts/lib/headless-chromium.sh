#!/usr/bin/env bash
# Headless Chromium (Debian's `chromium`) with no way to the internet, for the decision
# explorer's browser test (tests/e2e/explorer.rs) and scripts/screenshots.sh:
#
#     bash scripts/lib/headless-chromium.sh dump-dom URL           # the DOM, on stdout
#     bash scripts/lib/headless-chromium.sh screenshot FILE URL    # a 1200×900 PNG
#
# No first-run, sync, component updates, metrics or background requests; every host but
# localhost, 127.0.0.1 and [::1] resolves to nothing; a throw-away profile. CHROMIUM names
# another binary. Exits 3, saying so, when there is no Chromium (install it with
# scripts/setup-tests.sh), and 1 when the page does not load.
set -euo pipefail

chromium=${CHROMIUM:-chromium}
if ! command -v "$chromium" >/dev/null 2>&1; then
	echo "headless-chromium: $chromium not found; install Debian's chromium with: bash scripts/setup-tests.sh" >&2
	exit 3
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
log="$profile/chromium.log"
# Chromium's own log (D-Bus, GPU) is kept aside; shown when the page did not load.
loaded() {
	if grep -q 'Page load failed' "$log"; then
		grep 'Page load failed' "$log" >&2
		return 1
	fi
}
flags=(
	--headless --no-sandbox --disable-gpu
	--no-first-run --no-default-browser-check --disable-sync --metrics-recording-only
	--disable-background-networking --disable-component-update --disable-default-apps
	--disable-extensions --disable-domain-reliability --disable-client-side-phishing-detection
	--disable-breakpad --no-proxy-server --dns-prefetch-disable
	"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1]"
	--user-data-dir="$profile"
)

case "${1:-}" in
dump-dom)
	[[ $# -eq 2 ]] || { echo "usage: $0 dump-dom URL" >&2; exit 2; }
	timeout 60 "$chromium" "${flags[@]}" --dump-dom "$2" 2>"$log"
	loaded
	;;
screenshot)
	[[ $# -eq 3 ]] || { echo "usage: $0 screenshot FILE URL" >&2; exit 2; }
	timeout 60 "$chromium" "${flags[@]}" --hide-scrollbars --window-size=1200,900 \
		--screenshot="$2" "$3" 2>"$log"
	loaded
	[[ -s "$2" ]] || { echo "headless-chromium: no screenshot written to $2" >&2; exit 1; }
	;;
*)
	echo "usage: $0 dump-dom URL | screenshot FILE URL" >&2
	exit 2
	;;
esac
