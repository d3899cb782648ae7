#!/usr/bin/env bash
# Optional, not part of CI (about 8 minutes cold, as root): install the built
# setup.exe silently under Wine 10 (Debian trixie in a chroot; Debian 12's
# Wine 8 is too old), check the files, the Apps & Features entry and the
# .mmpreset association, run the installed `mmapp --version`, try numpy,
# uninstall silently and check that nothing is left.
#   bash installer/wine_check.sh [CHROOT]   (default /srv/mmapp-wine)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-/srv/mmapp-wine}
setup=$(ls installer/build/mmapp-*-setup.exe | head -1)
version=$(basename "$setup" | sed 's/^mmapp-\(.*\)-setup\.exe$/\1/')
if [ ! -x "$root/usr/lib/wine/wine64" ]; then
  apt-get install -y -qq debootstrap >/dev/null
  [ -d "$root/usr" ] || debootstrap --variant=minbase --include=ca-certificates trixie "$root" http://deb.debian.org/debian >/dev/null
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends wine wine64 xvfb xauth >/dev/null'
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
cp "$setup" "$root/tmp/setup.exe"
chroot "$root" env VERSION="$version" bash -s <<'IN'
set -u
export WINEPREFIX=/root/mmapp-wine-prefix WINEDEBUG=-all HOME=/root
# output through a file: wineserver outlives the command and would hold a pipe
W() { timeout 120 xvfb-run -a /usr/lib/wine/wine64 "$@" >/tmp/w.out 2>&1; tr -d '\r' </tmp/w.out | grep -v '^X connection'; }
# a crash (numpy) must not wait in winedbg
export WINEDLLOVERRIDES="winedbg.exe=d"
fails=0; ok() { echo "PASS $1"; }; bad() { echo "FAIL $1"; fails=$((fails + 1)); }
rm -rf "$WINEPREFIX"; W wineboot -i >/dev/null
W /tmp/setup.exe /S '/D=C:\mmapp' >/dev/null
d=$WINEPREFIX/drive_c/mmapp
[ -f "$d/python/pythonw.exe" ] && [ -f "$d/site-packages/mmapp/_assets/rigs/simulated.json" ] && [ -f "$d/uninstall.exe" ] && ok "silent install: files" || bad "silent install: files"
[ -f "$WINEPREFIX/drive_c/users/root/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/mmapp/mmapp.lnk" ] && ok "Start-menu shortcut" || bad "Start-menu shortcut"
W reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\mmapp' | grep -q "DisplayVersion.*$VERSION" && ok "Apps & Features entry, version $VERSION" || bad "Apps & Features entry"
W reg query 'HKCU\Software\Classes\mmapp.preset\shell\open\command' | grep -q -- '--preset' && ok ".mmpreset association" || bad ".mmpreset association"
v=$(W 'C:\mmapp\python\python.exe' 'C:\mmapp\launcher.py' --version | tail -1)
[ "$v" = "mmapp $VERSION" ] && ok "installed --version: $v" || bad "installed --version: $v"
echo "numpy under this Wine (expected to fail, see installer/README.md):"
W 'C:\mmapp\python\python.exe' -c "import site; site.addsitedir(r'C:\mmapp\site-packages'); import numpy; print('numpy', numpy.__version__)" | grep -m2 -E "numpy|unimplemented" || true
W 'C:\mmapp\uninstall.exe' /S >/dev/null
for _ in $(seq 60); do [ -e "$d" ] || break; sleep 1; done
[ ! -e "$d" ] && ok "silent uninstall: folder gone" || bad "silent uninstall: folder left"
W reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\mmapp' | grep -q 'Unable to find' && ok "uninstall key gone" || bad "uninstall key left"
W reg query 'HKCU\Software\Classes\.mmpreset' | grep -q 'Unable to find' && ok "association gone" || bad "association left"
/usr/lib/wine/wineserver -k 2>/dev/null || true
echo "wine: $((8 - fails)) passed, $fails failed"
exit "$fails"
IN
