#!/usr/bin/env bash
# Makes the base image that deploy/Dockerfile starts FROM, without a registry:
# a Debian 12 (bookworm) minbase root file system from debootstrap, imported
# into scripts/podman.sh's store as $RS_BASE_IMAGE (default
# localhost/refstream-debian:bookworm, the Dockerfile's default BASE_IMAGE).
#
# The mirror is the one this machine's apt already uses (read from its apt
# sources, never written down here), and the image gets the same sources, so
# that apt inside the build reaches what the host reaches. The root file
# system is kept as a tarball in the cache directory
# (${XDG_CACHE_HOME:-$HOME/.cache}/refstream/container/): debootstrap runs once
# per machine, the import once per image store. Idempotent; needs root and
# the debootstrap package.
#   --print-mirror   print the mirror it would use and exit
set -euo pipefail
cd "$(dirname "$0")/.."

image=${RS_BASE_IMAGE:-localhost/refstream-debian:bookworm}
suite=bookworm
cache=${RS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/refstream}/container
tarball=$cache/debian-$suite-minbase.tar

log() { echo "container-base: $*" >&2; }
die() {
        log "error: $*"
        exit 1
}

# Every "URI SUITE" pair of the machine's apt sources, one-line and deb822
# formats alike, for deb (binary) entries.
apt_entries() {
        local f
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [[ -f $f ]] || continue
                # deb [options] URI SUITE COMPONENT...
                sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
                        awk '$1 == "deb" && NF >= 4 { print $2, $3 }'
        done
        for f in /etc/apt/sources.list.d/*.sources; do
                [[ -f $f ]] || continue
                # Stanzas separated by blank lines; Types, URIs, Suites, Enabled.
                awk '
                        function flush(   i, j, nu, ns, u, s) {
                                if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn]o/) {
                                        nu = split(uris, u, " "); ns = split(suites, s, " ")
                                        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
                                }
                                types = uris = suites = enabled = ""
                        }
                        /^[[:space:]]*#/ { next }
                        /^[[:space:]]*$/ { flush(); next }
                        { key = tolower($1); sub(/:$/, "", key); $1 = "" ; sub(/^ +/, "") }
                        key == "types" { types = $0 } key == "uris" { uris = $0 }
                        key == "suites" { suites = $0 } key == "enabled" { enabled = $0 }
                        END { flush() }' "$f"
        done
}

# The Debian entries for this suite: bookworm, bookworm-updates,
# bookworm-security (other repositories need keys the image lacks).
debian_entries() { apt_entries | awk -v s="$suite" '$2 == s || $2 == s "-updates" || $2 == s "-security"' | sort -u; }

mirror() {
        local m
        m=$(debian_entries | awk -v s="$suite" '$2 == s { print $1; exit }')
        [[ -n $m ]] || die "no '$suite' entry in this machine's apt sources"
        printf '%s\n' "$m"
}

if [[ ${1:-} == --print-mirror ]]; then
        mirror
        exit 0
fi

if scripts/podman.sh image exists "$image"; then
        exit 0
fi

mkdir -p "$cache"
(
        flock -w 1200 9 || die "timed out waiting for $cache/.lock"
        if [[ ! -f $tarball ]]; then
                command -v debootstrap >/dev/null || die "debootstrap not found (run scripts/install-deps.sh)"
                m=$(mirror)
                rootfs=$cache/rootfs.tmp
                rm -rf "$rootfs" "$tarball.tmp"
                log "debootstrap --variant=minbase $suite from $m (once per machine)"
                if ! debootstrap --variant=minbase "$suite" "$rootfs" "$m" >"$cache/debootstrap.log" 2>&1; then
                        tail -n 30 "$cache/debootstrap.log" >&2
                        die "debootstrap failed (log: $cache/debootstrap.log)"
                fi
                # apt in the image uses the machine's Debian sources.
                rm -f "$rootfs/etc/apt/sources.list"
                debian_entries | awk '{
                        printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n", $1, $2
                        printf "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" }' \
                        >"$rootfs/etc/apt/sources.list.d/debian.sources"
                # What debian:*-slim images also do: no apt caches nor docs kept.
                printf '%s\n' 'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' \
                        >"$rootfs/etc/apt/apt.conf.d/90refstream-slim"
                rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
                tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
                rm -rf "$rootfs"
                mv "$tarball.tmp" "$tarball"
        fi
        if ! scripts/podman.sh image exists "$image"; then
                log "importing $tarball as $image"
                scripts/podman.sh import --change 'CMD ["/bin/bash"]' \
                        --message "debootstrap --variant=minbase $suite" "$tarball" "$image" >/dev/null
        fi
) 9>"$cache/.lock"
