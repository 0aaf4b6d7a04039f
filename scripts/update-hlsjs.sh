#!/usr/bin/env bash
# Regenerates web/static/hls.min.js, its worker (hls.worker.js) and its licence from the hls.js version
# pinned in web/browsertest/package-lock.json: npm ci checks the package
# against the lock's integrity hash, then the dist file is copied as is.
# The player loads it from seance's own origin when the browser has neither
# WebRTC with H.264 nor native HLS (Firefox without OpenH264, stock
# WebKitGTK). TestHLSJSMatchesLock (cmd/seance) checks the committed copy.
set -euo pipefail
cd "$(dirname "$0")/../web/browsertest"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
cp node_modules/hls.js/dist/hls.min.js ../static/hls.min.js
cp node_modules/hls.js/dist/hls.worker.js ../static/hls.worker.js
cp node_modules/hls.js/LICENSE ../static/hls.js.LICENSE.txt
echo "web/static/hls.min.js is hls.js $(node -p 'require("./node_modules/hls.js/package.json").version')"
