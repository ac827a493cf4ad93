#!/usr/bin/env bash
# First view of the article page: Lighthouse scores, bytes transferred, requests.
#
# Goal (DESIGN.md, "Measures"): <= 30 KB transferred in <= 4 requests;
# Lighthouse 100 in all four categories.
#
# Starts tribune on a temp database, installs Lighthouse from npm into a temp
# dir (`npm install --no-save lighthouse`; set LH_DIR to a folder to keep and
# reuse the install), runs it once with Chromium headless (Lighthouse's
# defaults: mobile form factor, simulated throttling) and prints the four
# category scores, and from the JSON report the first view's requests and
# bytes (audits "network-requests" and "total-byte-weight").
#
# Needs: node + npm, chromium (apt-get install -y chromium), curl.
# Env: CHROME_PATH (default /usr/bin/chromium), LH_DIR, LH_VERSION (default
#      latest), REPORT (also copy the JSON report there), TRIBUNE_BIN / NO_BUILD=1.

source "$(dirname "$0")/lib.sh"
need curl node npm

export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
[[ -x "$CHROME_PATH" ]] || die "no Chromium at $CHROME_PATH (apt-get install -y chromium)"
CHROME_FLAGS="--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync"

BIN=$(tribune_bin)
PORT=$(free_port)
start_tribune lighthouse "$PORT" ""
URL="http://127.0.0.1:$PORT$ARTICLE"

LH_DIR=${LH_DIR:-$TMP/lighthouse}
mkdir -p "$LH_DIR"
if [[ ! -f "$LH_DIR/node_modules/lighthouse/cli/index.js" ]]; then
    (cd "$LH_DIR" && npm install --no-save --no-audit --no-fund --loglevel=error "lighthouse${LH_VERSION:+@$LH_VERSION}") >&2
fi
LH_CLI="$LH_DIR/node_modules/lighthouse/cli/index.js"
LH_VER=$(node -p "require('$LH_DIR/node_modules/lighthouse/package.json').version")

OUT="$TMP/report.json"
node "$LH_CLI" "$URL" --quiet --output=json --output-path="$OUT" \
    --chrome-flags="$CHROME_FLAGS" > "$TMP/lighthouse.log" 2>&1 \
    || { cat "$TMP/lighthouse.log" >&2; die "lighthouse failed"; }
[[ -n "${REPORT:-}" ]] && cp "$OUT" "$REPORT"

echo "tribune: $(describe_build)"
echo "Lighthouse $LH_VER on $($CHROME_PATH --version 2>/dev/null | grep -m1 -i chrom || echo chromium), $URL"
node - "$OUT" <<'JS'
const r = require(process.argv[2]);
const c = r.categories;
const order = ["performance", "accessibility", "best-practices", "seo"];
const score = (k) => (c[k] && c[k].score != null ? Math.round(c[k].score * 100) : "n/a");
console.log("scores: " + order.map((k) => `${k} ${score(k)}`).join(", "));
const cfg = r.configSettings || {};
console.log(`settings: formFactor ${cfg.formFactor}, throttling ${cfg.throttlingMethod}`);
const items = (r.audits["network-requests"].details || {}).items || [];
// data: URLs are listed by Lighthouse but never touch the network.
const http = items.filter((i) => !i.url.startsWith("data:"));
const transferred = items.reduce((s, i) => s + (i.transferSize || 0), 0);
const weight = r.audits["total-byte-weight"].numericValue;
console.log(`first view: ${http.length} HTTP requests (${items.length} entries in network-requests, ` +
    `${items.length - http.length} of them data: URLs), ${transferred} bytes transferred` +
    ` (${(transferred / 1000).toFixed(1)} KB); total-byte-weight ${weight} bytes`);
for (const i of items) {
  const u = i.url.replace(/^https?:\/\/[^/]+/, "");
  console.log(`  ${String(i.statusCode).padEnd(4)}${String(i.transferSize).padStart(8)} B  ${(i.resourceType || "").padEnd(11)} ${u.length > 70 ? u.slice(0, 67) + "..." : u}`);
}
const lcp = r.audits["largest-contentful-paint"], fcp = r.audits["first-contentful-paint"];
const cls = r.audits["cumulative-layout-shift"], tbt = r.audits["total-blocking-time"];
console.log(`metrics: FCP ${fcp.displayValue}, LCP ${lcp.displayValue}, TBT ${tbt.displayValue}, CLS ${cls.displayValue}`);
const failing = [];
for (const k of order) {
  if (!c[k]) continue;
  for (const ref of c[k].auditRefs) {
    const a = r.audits[ref.id];
    if (ref.weight > 0 && a.score != null && a.score < 1) failing.push(`${k}: ${ref.id} (${a.score})`);
  }
}
console.log(failing.length ? "audits below 1 that weigh in a score:\n  " + failing.join("\n  ") : "every weighted audit scores 1");
const ok = http.length <= 4 && transferred <= 30000 && order.every((k) => score(k) === 100);
console.log(`goal (<= 30 KB in <= 4 requests, 100 x 4): ${ok ? "PASS" : "FAIL"}`);
process.exitCode = ok ? 0 : 1;
JS
