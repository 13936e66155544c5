#!/bin/sh
# The built-in backup action, run on a node as `set -- SOURCE DEST_DIR NAME` + this file.
# Archives SOURCE into DEST_DIR/NAME (tar.gz), proves the archive reads back, and prints
# path=, size=, sha256= and source= lines that the engine journals.
set -e
src=$1
dest=$2
name=$3
[ -e "$src" ] || { echo "nothing to back up: $src does not exist" >&2; exit 3; }
mkdir -p "$dest"
f="$dest/$name"
tar -czf "$f.tmp" -C "$(dirname "$src")" "$(basename "$src")"
tar -tzf "$f.tmp" >/dev/null
mv "$f.tmp" "$f"
echo "path=$f"
echo "size=$(stat -c %s "$f")"
echo "sha256=$(sha256sum "$f" | cut -d' ' -f1)"
echo "source=$src"
