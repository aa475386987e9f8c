# The Debian packages every script needs, in one place, each with its reason; sourced by
# scripts/install-test-deps, scripts/demo, scripts/smoke-aarch64, scripts/fuzz and
# benches/load/run.
#
#   source scripts/lib/packages.sh
#   ensure_debian_packages smoke-aarch64 "${CROSS_PACKAGES[@]}" "${SMOKE_PACKAGES[@]}"
#   ensure_node_and_npm load            # nodejs / npm only when the command is missing
#   check_cross_c_headers smoke-aarch64
#
# Installs use --no-install-recommends, so a package named here must be enough through its
# Depends alone: whatever a step needs that a listed package only Recommends is listed itself.
# What `apt-cache depends` showed on Debian 12 (bookworm), for each package with Recommends:
#
#   gcc-aarch64-linux-gnu   Depends cpp-aarch64-linux-gnu, gcc-12-aarch64-linux-gnu;
#                           Recommends libc6-dev-arm64-cross (so does gcc-12-aarch64-linux-gnu)
#                           -> listed: without it ring's C build for aarch64 finds no
#                              bits/libc-header-start.h
#   gcc                     Depends cpp, gcc-12; gcc-12 Recommends libc6-dev
#                           -> libc6-dev listed (the host's C headers)
#   g++                     Depends g++-12, which Depends libstdc++-12-dev; no Recommends
#                           (the C++ headers libFuzzer's build needs come through Depends)
#   libc6-dev-arm64-cross   Depends libc6-arm64-cross, linux-libc-dev-arm64-cross: complete
#   libnginx-mod-http-set-misc  Depends libnginx-mod-http-ndk and nginx's ABI; Recommends nginx
#                           -> nginx listed
#   nginx                   Depends nginx-common, iproute2 (and libraries); no Recommends
#   redis-server            Depends redis-tools, lsb-base; no Recommends
#   chromium                Depends chromium-common and libraries (fonts through fontconfig's
#                           Depends); Recommends upower, udev, libgl1-mesa-dri,
#                           fonts-liberation, notification-daemon, system-config-printer:
#                           none needed by headless Chromium driven over CDP
#   buildah                 Depends uidmap, golang-github-containers-common (Recommends
#                           netavark); Recommends fuse-overlayfs, crun | runc: none needed,
#                           scripts/check-image uses the vfs driver, chroot isolation, and the
#                           Dockerfile has no RUN step
#   qemu-user-static        no Depends; Recommends binfmt-support, systemd: not needed,
#                           qemu-aarch64-static is called explicitly
#   apache2                 Depends apache2-bin, apache2-data, apache2-utils, ...; Recommends
#                           ssl-cert: not needed (the benchmark serves plain http on 127.0.0.1)
#   iproute2                Recommends libatm1: not needed (only `ip link set lo up`)
#   util-linux              Recommends sensible-utils: not needed (only `unshare`)
#   file, curl, ca-certificates, wrk, openssl, libapache2-mod-auth-openidc, python3-venv:
#                           no Recommends
#   nodejs / npm            asked for only when `node` / `npm` is missing (ensure_node_and_npm):
#                           a machine's own Node.js (e.g. NodeSource's nodejs, which ships npm)
#                           declares "Conflicts: npm", so Debian's npm must never be asked for
#                           beside it

# === the lists ===

# Any cargo build (scripts/test, scripts/cross-build, benches/load/run): ring compiles C.
BUILD_PACKAGES=(
  gcc                     # the host's cc: ring's C for the host architecture, and the linker
  libc6-dev               # the host's C headers (gcc-12 only Recommends it)
)

# The fuzz targets (scripts/fuzz), besides BUILD_PACKAGES.
FUZZ_PACKAGES=(
  "${BUILD_PACKAGES[@]}"
  g++                     # libfuzzer-sys compiles libFuzzer, which is C++
)

# Static release binaries (scripts/cross-build), besides BUILD_PACKAGES.
case "$(dpkg --print-architecture 2>/dev/null || echo amd64)" in
  arm64) CROSS_TARGET_PACKAGES=(gcc-x86-64-linux-gnu libc6-dev-amd64-cross) ;;
  *)     CROSS_TARGET_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
esac
CROSS_PACKAGES=(
  "${BUILD_PACKAGES[@]}"
  "${CROSS_TARGET_PACKAGES[@]}"  # the other architecture's gcc (also its linker) and its C
                                 # headers (only Recommended by that gcc)
  ca-certificates         # cross-build copies /etc/ssl/certs/ca-certificates.crt into the image
  file                    # cross-build checks each binary's architecture and static linking
)

# The end-to-end tests (cargo test): the real servers they start.
TEST_PACKAGES=(
  nginx                   # the real NGINX in front of authgate
  libnginx-mod-http-set-misc  # set_escape_uri, as ingress-nginx renders auth-signin
  redis-server            # the server-side session store
  chromium                # the headless browser of the login tests
  curl                    # not run by the tests: checking a running authgate by hand
)

# The local demo (scripts/demo), besides BUILD_PACKAGES; Node.js through ensure_node_and_npm.
DEMO_PACKAGES=(
  nginx                   # the NGINX in front of the demo's app, configured as ingress-nginx
  libnginx-mod-http-set-misc  # set_escape_uri, as ingress-nginx renders auth-signin
  curl                    # the demo's readiness checks
)

# The manifest checks (scripts/check-k8s): PyPI tools in a virtualenv.
K8S_CHECK_PACKAGES=(
  python3                 # tests/k8s/*.py (3.11+ for tomllib; bookworm has 3.11)
  python3-venv            # python3 -m venv (ensurepip); not part of python3
)

# The container image (scripts/check-image).
IMAGE_PACKAGES=(
  buildah                 # builds and inspects the image, vfs storage, chroot isolation
  qemu-user-static        # runs the arm64 binary of the image in an empty root filesystem
)

# The aarch64 smoke test (scripts/smoke-aarch64), besides CROSS_PACKAGES.
SMOKE_PACKAGES=(
  qemu-user-static        # tests/aarch64.rs runs the arm64 binary under qemu-aarch64-static
  file                    # reports each binary's architecture
)

# The load benchmark (benches/load/run); Node.js through ensure_node_and_npm.
LOAD_PACKAGES=(
  nginx                   # the NGINX measured, alone and in front of authgate
  libnginx-mod-http-set-misc  # set_escape_uri in its auth configuration
  wrk                     # the load generator
  apache2                 # Apache with mod_auth_openidc, the comparison
  libapache2-mod-auth-openidc
  openssl                 # keys and certificates of the benchmark's identity provider
  iproute2                # `ip link set lo up` in the benchmark's network namespace
  util-linux              # unshare (the network namespace), lscpu
)

# === installing ===

# ensure_debian_packages WHO PACKAGE...: installs whichever PACKAGE is not installed yet
# (apt-get update first, --no-install-recommends), as root or through sudo. WHO prefixes the
# messages.
ensure_debian_packages() {
  local who="$1"; shift
  local missing=() p seen=" "
  for p in "$@"; do
    case "$seen" in *" $p "*) continue ;; esac
    seen+="$p "
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "$who: installing Debian packages: ${missing[*]}" >&2
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ensure_node_and_npm WHO: Debian's nodejs only when there is no `node`, Debian's npm only when
# there is no `npm` (never because node_modules is absent); then requires Node.js 20 or newer
# (playwright-core's engines; bookworm's own nodejs is 18).
ensure_node_and_npm() {
  local who="$1" want=()
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
  ((${#want[@]} == 0)) || ensure_debian_packages "$who" "${want[@]}"
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "$who: node and npm are needed" >&2; return 1; }
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then
    echo "$who: Node.js $(node --version) is too old: tests/support/node needs 20 or newer" \
      "(Debian 12's nodejs is 18; install a newer Node.js, which brings its own npm)" >&2
    return 1
  fi
}

# check_cross_c_headers WHO: fails, saying what to install, when the cross C headers that ring's
# build includes are missing (a cross gcc installed without its Recommends).
check_cross_c_headers() {
  local who="$1" gnu
  case "${CROSS_TARGET_PACKAGES[0]}" in
    gcc-x86-64-linux-gnu) gnu=x86_64-linux-gnu ;;
    *) gnu=aarch64-linux-gnu ;;
  esac
  local header="/usr/$gnu/include/bits/libc-header-start.h"
  if [ ! -e "$header" ]; then
    echo "$who: $header is missing: the cross C headers are not installed" \
      "(apt-get install --no-install-recommends ${CROSS_TARGET_PACKAGES[1]})" >&2
    return 1
  fi
}
