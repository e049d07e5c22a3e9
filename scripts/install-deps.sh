#!/usr/bin/env bash
# The one place that installs what the tests need (`make deps`; CI runs it
# before `make lint test`, which install nothing):
#   - Debian packages: chromium and firefox-esr (browser end-to-end tests),
#     libavcodec59 (Debian's firefox-esr decodes MP3 through the system FFmpeg:
#     without it the Firefox test cannot play), pulseaudio (the Firefox test
#     plays into a PulseAudio null sink of its own: Firefox fails on a machine
#     without audio output), prometheus (dashboard test), coturn (the TURN
#     relay tests start its turnserver on loopback), nats-server (the
#     multi-hub tests start a JetStream server or a 3-node cluster on
#     loopback), webkit2gtk-driver with
#     xvfb and xauth (the WebKitGTK test drives MiniBrowser through
#     WebKitWebDriver under xvfb-run) and GStreamer's base, good and libav
#     plugins (WebKitGTK decodes MP3 through them),
#     lame and sox (fixture and demo generators: media/testdata/make-fixtures.sh,
#     go run ./demo/generate), ffmpeg (package transcode runs it and ffprobe;
#     internal/testaudio makes the FLAC, M4A, Ogg, Opus and WAV fixtures);
#   - the web tests' npm packages (`npm ci` in web/: playwright-core,
#     puppeteer-core, typescript; no browser is downloaded), whenever
#     web/node_modules does not match web/package-lock.json.
# Idempotent: a machine that has everything installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# installed PACKAGE: whether dpkg has the Debian package installed.
installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

need=()
# Programs: present on the PATH is enough (however they were installed).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
command -v pulseaudio >/dev/null 2>&1 || need+=(pulseaudio)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v lame >/dev/null 2>&1 || need+=(lame)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null 2>&1 || need+=(xvfb)
command -v xauth >/dev/null 2>&1 || need+=(xauth)
# Libraries have no command: ask dpkg.
installed libavcodec59 || need+=(libavcodec59)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav; do
  installed "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The web tests' npm packages. scripts/check-web-deps.mjs compares
# web/node_modules with web/package-lock.json (contents, not file times), so
# a lock file changed by a pull or an edit is installed on the next run.
if ! node scripts/check-web-deps.mjs web 2>/dev/null; then
  echo "install-deps: npm ci in web/" >&2
  (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  node scripts/check-web-deps.mjs web
fi
